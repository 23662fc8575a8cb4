// Every object starts with 8 bytes: magic "AMBR", format version, kind, two reserved zero bytes.
import { AmberError } from '../core/errors.ts';

export const FORMAT_VERSION = 1;
export const HEADER_BYTES = 8;
const MAGIC = Buffer.from('AMBR', 'ascii');

export const OBJECT_KIND = {
  config: 1,
  key: 2,
  pack: 3,
  index: 4,
  snapshot: 5,
  epoch: 6,
  revocation: 7,
  // 8 belonged to the certification records of an early draft and stays unassigned.
  grant: 9,
  policy: 10,
  hold: 11,
  forget: 12,
  condemn: 13,
  audit: 14,
  checkpoint: 15,
  request: 16,
  execution: 17,
  witness: 18,
} as const;

export type ObjectKind = keyof typeof OBJECT_KIND;

export function encodeHeader(kind: ObjectKind): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header[4] = FORMAT_VERSION;
  header[5] = OBJECT_KIND[kind];
  return header;
}

/** Checks magic, version and kind; `name` is only for the message. */
export function checkHeader(bytes: Uint8Array, kind: ObjectKind, name: string): void {
  if (bytes.length < HEADER_BYTES || !MAGIC.equals(bytes.subarray(0, 4))) {
    throw new AmberError('OBJECT_CORRUPT', `${name} is not an Amber object (bad magic)`);
  }
  if (bytes[4] !== FORMAT_VERSION) {
    throw new AmberError(
      'FORMAT_UNSUPPORTED',
      `${name} has format version ${bytes[4]}; this Amber reads version ${FORMAT_VERSION}`,
      {
        hint: 'upgrade Amber to read this repository',
      },
    );
  }
  if (bytes[5] !== OBJECT_KIND[kind]) {
    throw new AmberError('OBJECT_CORRUPT', `${name} is an object of kind ${bytes[5]}, expected ${kind}`);
  }
}
