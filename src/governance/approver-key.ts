// Approver key files. An approver holds an Ed25519 key pair of their own, apart from any repository
// key: FILE keeps the private key sealed under a passphrase (scrypt, AES-256-GCM), FILE.pub the public
// key that the repository owner registers. Signing a decision needs the file and its passphrase.
import { AmberError } from '../core/errors.ts';
import { keyIdOf, type Signer } from '../repo/signed-record.ts';
import {
  deriveWrappingKey,
  generateSigningKeyPair,
  newScryptParams,
  open,
  seal,
  signMessage,
  type ScryptParams,
} from '../crypto/index.ts';

export interface ApproverKeyFile {
  type: 'amber-approver-key';
  version: 1;
  publicKey: string;
  kdf: { algorithm: 'scrypt' } & ScryptParams;
  sealedPrivateKey: string;
}

export interface ApproverPublicKeyFile {
  type: 'amber-approver-public-key';
  version: 1;
  publicKey: string;
}

export interface ApproverSigner {
  publicKey: Buffer;
  sign(message: Uint8Array): Buffer;
  /** The same key as a record signer: an approver signs its own audit entries. */
  signer: Signer;
}

const AAD = Buffer.from('amber/v1/approver-key', 'ascii');
const isHexKey = (value: unknown) => typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);

export async function createApproverKey(
  passphrase: string,
  kdfLogN?: number,
): Promise<{ keyFile: ApproverKeyFile; publicFile: ApproverPublicKeyFile }> {
  const pair = generateSigningKeyPair();
  const kdf = newScryptParams(kdfLogN);
  const sealed = seal(await deriveWrappingKey(passphrase, kdf), pair.privateKey, AAD);
  const publicKey = pair.publicKey.toString('hex');
  return {
    keyFile: {
      type: 'amber-approver-key',
      version: 1,
      publicKey,
      kdf: { algorithm: 'scrypt', ...kdf },
      sealedPrivateKey: sealed.toString('base64'),
    },
    publicFile: { type: 'amber-approver-public-key', version: 1, publicKey },
  };
}

/** Parses FILE.pub (or the key file itself: it carries the public key too). */
export function parseApproverPublicKey(text: string, source: string): Buffer {
  let parsed: Partial<ApproverPublicKeyFile> | undefined;
  try {
    parsed = JSON.parse(text);
  } catch {
    // reported below
  }
  if (
    !parsed ||
    (parsed.type !== 'amber-approver-public-key' && parsed.type !== 'amber-approver-key') ||
    !isHexKey(parsed.publicKey)
  ) {
    throw new AmberError('USAGE', `${source} is not an Amber approver public key file`, {
      hint: 'create one with `amber approver keygen --out FILE` and pass FILE.pub',
    });
  }
  return Buffer.from(parsed.publicKey!, 'hex');
}

export async function unlockApproverKey(text: string, passphrase: string, source: string): Promise<ApproverSigner> {
  let file: ApproverKeyFile | undefined;
  try {
    file = JSON.parse(text);
  } catch {
    // reported below
  }
  if (
    file?.type !== 'amber-approver-key' ||
    !isHexKey(file.publicKey) ||
    typeof file.sealedPrivateKey !== 'string' ||
    file.kdf?.algorithm !== 'scrypt'
  ) {
    throw new AmberError('USAGE', `${source} is not an Amber approver key file`, {
      hint: 'pass the private key file made by `amber approver keygen` (not FILE.pub)',
    });
  }
  let privateKey: Buffer;
  try {
    privateKey = open(await deriveWrappingKey(passphrase, file.kdf), Buffer.from(file.sealedPrivateKey, 'base64'), AAD);
  } catch {
    throw new AmberError('WRONG_PASSWORD', `the passphrase does not open the approver key ${source}`, {
      hint: 'check AMBER_APPROVER_PASSWORD',
    });
  }
  const publicKey = Buffer.from(file.publicKey, 'hex');
  return {
    publicKey,
    sign: (message) => signMessage(privateKey, publicKey, message),
    signer: { keyId: keyIdOf(publicKey), publicKey, privateKey },
  };
}
