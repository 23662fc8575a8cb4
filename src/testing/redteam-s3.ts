// Red-team helpers for the S3 bucket source: a client on the test suite's RGW, buckets of one's
// own filled with chosen keys, and reading a bucket back (key → bytes as text).
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { s3Env } from './s3-fixture.ts';

export function redteamS3(): S3Client {
  return new S3Client({
    endpoint: s3Env!.endpoint,
    region: s3Env!.region,
    credentials: s3Env!.credentials,
    forcePathStyle: true,
  });
}

export async function makeBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
}

export async function putKey(
  s3: S3Client,
  bucket: string,
  key: string,
  body: string | Buffer,
  extra: Partial<ConstructorParameters<typeof PutObjectCommand>[0]> = {},
): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...extra }));
}

export async function listKeys(s3: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }),
    );
    out.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out.sort();
}

/** Every object under the prefix as key → its bytes as text. */
export async function contents(s3: S3Client, bucket: string, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const key of await listKeys(s3, bucket, prefix)) {
    const o = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    out[key] = Buffer.from(await o.Body!.transformToByteArray()).toString('utf8');
  }
  return out;
}

/** The s3src+http:// URL of a bucket (and prefix) on the test RGW (or a proxy's port), the access key id in it. */
export function bucketUrl(bucket: string, prefix = '', port?: number): string {
  const endpoint = new URL(s3Env!.endpoint);
  return `s3src+http://${s3Env!.credentials.accessKeyId}@127.0.0.1:${port ?? endpoint.port}/${bucket}/${prefix}`;
}
