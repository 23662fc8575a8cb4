// What the vault checks before an uploaded object becomes visible. It holds no data key, so it
// checks what needs none: every name but `config` carries the SHA-256 of its bytes (requests and
// executions: of the request they name), and the config must be one. Anything else is refused.
import { AmberError } from '../core/errors.ts';
import { sha256Hex } from '../crypto/index.ts';
import { decodeConfig } from '../repo/config.ts';
import { CONFIG_NAME, hashOfName, PREFIX } from '../repo/layout.ts';
import { decodeSignedRecord, parseJsonPayload } from '../repo/signed-record.ts';

const mismatch = (name: string, what: string) => new AmberError('OBJECT_CORRUPT', `${name}: ${what}; the object was not stored`, {
  hint: 'names carry the hash of what they name: upload the bytes that belong to this name',
});

export function checkUpload(name: string, bytes: Buffer): void {
  if (name === CONFIG_NAME) {
    decodeConfig(bytes, name);
    return;
  }
  const hash = hashOfName(name);
  if (hash === undefined) throw new AmberError('INVALID_OBJECT_NAME', `${name} is not an object name of an Amber repository`);
  if (name.startsWith(PREFIX.requests)) {
    // A request is named by the hash of its canonical JSON, the record's payload.
    if (sha256Hex(decodeSignedRecord('request', bytes, name).payload) !== hash) throw mismatch(name, 'the request does not hash to its id');
    return;
  }
  if (name.startsWith(PREFIX.executions)) {
    const execution = parseJsonPayload<{ request?: unknown }>(decodeSignedRecord('execution', bytes, name), name);
    if (execution?.request !== hash) throw mismatch(name, 'the execution names another request');
    return;
  }
  if (sha256Hex(bytes) !== hash) throw mismatch(name, 'the bytes do not hash to the name');
}
