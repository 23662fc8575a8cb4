// What the vault checks before an uploaded object becomes visible. It holds no data key, so it
// checks what needs none: every name but `config` carries the SHA-256 of its bytes (requests and
// executions: of the request they name), the config must be one, and a decision must be signed by
// the approver key it names. Anything else is refused.
import { AmberError } from '../core/errors.ts';
import { sha256Hex } from '../crypto/index.ts';
import { decodeConfig } from '../repo/config.ts';
import { CONFIG_NAME, hashOfName, PREFIX } from '../repo/layout.ts';
import { decodeSignedRecord, parseJsonPayload } from '../repo/signed-record.ts';
import { decisionMessage, isSignedDecision } from '../governance/requests.ts';
import { verifySignature } from '../crypto/index.ts';

const mismatch = (name: string, what: string) => new AmberError('OBJECT_CORRUPT', `${name}: ${what}; the object was not stored`, {
  hint: 'names carry the hash of what they name: upload the bytes that belong to this name',
});

/** Refuses what does not belong under the name; for a decision, returns the request it decides on. */
export function checkUpload(name: string, bytes: Buffer): { decidesOn?: string } {
  if (name === CONFIG_NAME) {
    decodeConfig(bytes, name);
    return {};
  }
  const hash = hashOfName(name);
  if (hash === undefined) throw new AmberError('INVALID_OBJECT_NAME', `${name} is not an object name of an Amber repository`);
  if (name.startsWith(PREFIX.requests)) {
    // A request is named by the hash of its canonical JSON, the record's payload.
    if (sha256Hex(decodeSignedRecord('request', bytes, name).payload) !== hash) throw mismatch(name, 'the request does not hash to its id');
    return {};
  }
  if (name.startsWith(PREFIX.executions)) {
    const execution = parseJsonPayload<{ request?: unknown }>(decodeSignedRecord('execution', bytes, name), name);
    if (execution?.request !== hash) throw mismatch(name, 'the execution names another request');
    return {};
  }
  if (sha256Hex(bytes) !== hash) throw mismatch(name, 'the bytes do not hash to the name');
  return name.startsWith(PREFIX.decisions) ? { decidesOn: checkDecision(name, bytes) } : {};
}

/** Whether the approver named in it signed it (whether that approver counts is for the tally); the request it names. */
function checkDecision(name: string, bytes: Buffer): string {
  let decision: unknown;
  try {
    decision = JSON.parse(bytes.toString('utf8'));
  } catch {
    decision = undefined;
  }
  if (!isSignedDecision(decision)) throw mismatch(name, 'it is not a signed decision');
  const signed = verifySignature(Buffer.from(decision.approver, 'hex'), decisionMessage(decision.request, decision.decision), Buffer.from(decision.signature, 'base64'));
  if (!signed) throw new AmberError('SIGNATURE_INVALID', `${name}: the decision's signature does not verify with the approver key it names; it was not stored`);
  return decision.request;
}
