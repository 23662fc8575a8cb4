// S3's errors, translated at the boundary into the storage contract's closed set of codes.
import { AmberError, isAmberError } from '../../core/errors.ts';

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
}

export const statusOf = (error: unknown): number | undefined => (error as SdkError)?.$metadata?.httpStatusCode;
export const s3CodeOf = (error: unknown): string => (error as SdkError)?.name ?? (error as SdkError)?.code ?? 'Error';

export function translateS3Error(error: unknown, what: string, location: string): AmberError {
  if (isAmberError(error)) return error;
  const status = statusOf(error);
  const code = s3CodeOf(error);
  const message = (error as SdkError)?.message ?? String(error);
  // Some servers send no message; the SDK then says only "UnknownError".
  const detail = `${what} at ${location}: ${code}${status ? ` (HTTP ${status})` : ''}${message && message !== 'UnknownError' ? `: ${message}` : ''}`;
  const options = { cause: error, details: { s3Code: code, status } };
  if (code === 'NoSuchBucket') {
    return new AmberError('REPO_NOT_FOUND', `the bucket does not exist: ${detail}`, {
      ...options,
      hint: 'create it with `amber init --create-bucket`, or check the bucket name',
    });
  }
  if (status === 404 || code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchVersion')
    return new AmberError('OBJECT_NOT_FOUND', detail, options);
  if (status === 412 || code === 'PreconditionFailed') return new AmberError('OBJECT_EXISTS', detail, options);
  if (code === 'QuotaExceeded' || code === 'EntityTooLarge' || status === 507) {
    return new AmberError('STORAGE_FULL', detail, {
      ...options,
      hint: 'the bucket or account reached its quota, or the server is out of space: raise the quota or add capacity, then run the command again; what was written stays valid',
    });
  }
  if (code === 'CredentialsProviderError') {
    return new AmberError('STORAGE_ACCESS_DENIED', `no S3 credentials: ${detail}`, {
      ...options,
      hint: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an instance role applies',
    });
  }
  if (
    status === 401 ||
    status === 403 ||
    code === 'AccessDenied' ||
    code === 'InvalidAccessKeyId' ||
    code === 'SignatureDoesNotMatch'
  ) {
    return new AmberError('STORAGE_ACCESS_DENIED', detail, {
      ...options,
      hint: 'check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile) and that their policy allows this; see docs/s3.md',
    });
  }
  if (status === 416 || code === 'InvalidRange')
    return new AmberError('OBJECT_CORRUPT', `a read past the end of the object: ${detail}`, options);
  if (
    status !== undefined &&
    status >= 400 &&
    status < 500 &&
    status !== 408 &&
    status !== 429 &&
    code !== 'SlowDown' &&
    code !== 'RequestTimeout'
  ) {
    return new AmberError('STORAGE_UNSUITABLE', `the S3 server refused the request: ${detail}`, {
      ...options,
      hint: 'the bucket or server may lack a feature Amber needs (versioning, Object Lock); `amber init` on the bucket says which',
    });
  }
  // Throttling, 5xx and network failures the SDK's own retries did not get past.
  return new AmberError('STORAGE_TRANSIENT', detail, {
    ...options,
    hint: 'the S3 server or the network failed; run the command again',
  });
}
