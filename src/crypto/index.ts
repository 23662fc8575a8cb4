// Cryptographic primitives: AEAD, hashes and keyed ids, signatures, public-key sealing, passphrase KDF.
export * from './aead.ts';
export * from './hashes.ts';
export * from './signing.ts';
export * from './sealed-box.ts';
export * from './passphrase.ts';
