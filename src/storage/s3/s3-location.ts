// Where an S3 repository lives, from `--repo`: `s3:http(s)://ENDPOINT/BUCKET[/PREFIX]` for any
// S3-compatible server (path-style addressing), `s3:BUCKET[/PREFIX]` for AWS (endpoint and region
// from the SDK's standard configuration).
import { AmberError } from '../../core/errors.ts';

export interface S3Location {
  /** Absent for AWS, where the SDK finds the regional endpoint itself. */
  endpoint?: string;
  bucket: string;
  /** Key prefix of the repository inside the bucket, without slashes at either end ('' for the root). */
  prefix: string;
}

/** DNS-compatible bucket names, as S3 requires for new buckets (3–63 lowercase letters, digits, '.', '-'). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9_.-]+$/;

export function parseS3Location(text: string): S3Location {
  const usage = (why: string) =>
    new AmberError('USAGE', `"${text}" is not an S3 repository location: ${why}`, {
      hint: 'use s3:https://HOST:PORT/BUCKET[/PREFIX] for an S3-compatible server or s3:BUCKET[/PREFIX] for AWS',
    });
  if (!text.startsWith('s3:')) throw usage('it does not start with s3:');
  const rest = text.slice(3);
  let endpoint: string | undefined;
  let path = rest;
  if (/^https?:\/\//.test(rest)) {
    const url = new URL(rest);
    if (url.username || url.password)
      throw usage('credentials belong in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile, not the URL');
    if (url.search || url.hash) throw usage('no query or fragment is allowed');
    endpoint = `${url.protocol}//${url.host}`;
    // The path as typed, not url.pathname: URL folds "a/../b" (and "%2e%2e") into "b", so the check
    // below for "." and ".." segments would never see them, and another prefix would be used.
    path = rest.replace(/^https?:\/\/[^/]*/, '').replace(/^\/+/, '');
  }
  const [bucket, ...segments] = path.replace(/\/+$/, '').split('/');
  if (!bucket || !BUCKET.test(bucket)) throw usage(`"${bucket ?? ''}" is not a valid bucket name`);
  if (!segments.every((segment) => PREFIX_SEGMENT.test(segment) && segment !== '.' && segment !== '..'))
    throw usage('the prefix has an empty, "." or ".." segment or a character outside A-Z a-z 0-9 _ . -');
  return { endpoint, bucket, prefix: segments.join('/') };
}

export function formatS3Location({ endpoint, bucket, prefix }: S3Location): string {
  return `s3:${endpoint ? `${endpoint}/` : ''}${bucket}${prefix ? `/${prefix}` : ''}`;
}
