// The repository config: public parameters, signed by the owner key it names. Key files pin the
// SHA-256 of these bytes, so a replaced config is refused even though its name holds no hash.
import { randomBytes } from 'node:crypto';
import { AmberError } from '../core/errors.ts';
import { DEFAULT_CHUNKER_PARAMS, validateChunkerParams, type ChunkerParams } from '../chunker/fastcdc.ts';
import {
  decodeSignedRecord,
  encodeSignedRecord,
  hasValidSignature,
  jsonBytes,
  parseJsonPayload,
  type Signer,
} from './signed-record.ts';
import { CONFIG_NAME } from './layout.ts';

export interface RepoConfig {
  repositoryId: string;
  formatVersion: 1;
  createdAt: string;
  idHash: 'hmac-sha256';
  aead: 'aes-256-gcm';
  compression: 'zstd';
  chunker: { algorithm: 'fastcdc' } & ChunkerParams;
  packTargetBytes: number;
  /** Features a reader must understand to open the repository; unknown ones are refused. */
  requiredFeatures: string[];
  optionalFeatures: string[];
  ownerPublicKey: string;
  [unknownField: string]: unknown;
}

export const KNOWN_FEATURES: readonly string[] = [];
export const DEFAULT_PACK_TARGET_BYTES = 16 * 1024 * 1024;

export function newConfig(options: {
  ownerPublicKey: Buffer;
  createdAt: string;
  chunker?: ChunkerParams;
  packTargetBytes?: number;
}): RepoConfig {
  return {
    repositoryId: randomBytes(32).toString('hex'),
    formatVersion: 1,
    createdAt: options.createdAt,
    idHash: 'hmac-sha256',
    aead: 'aes-256-gcm',
    compression: 'zstd',
    chunker: { algorithm: 'fastcdc', ...(options.chunker ?? DEFAULT_CHUNKER_PARAMS) },
    packTargetBytes: options.packTargetBytes ?? DEFAULT_PACK_TARGET_BYTES,
    requiredFeatures: [],
    optionalFeatures: [],
    ownerPublicKey: options.ownerPublicKey.toString('hex'),
  };
}

export function encodeConfig(config: RepoConfig, owner: Signer): Buffer {
  return encodeSignedRecord('config', jsonBytes(config), owner);
}

export function decodeConfig(bytes: Buffer, location: string): RepoConfig {
  const where = `${CONFIG_NAME} in ${location}`;
  let config: RepoConfig;
  try {
    const record = decodeSignedRecord('config', bytes, where);
    config = parseJsonPayload<RepoConfig>(record, where);
    if (
      typeof config.ownerPublicKey !== 'string' ||
      !hasValidSignature('config', record, Buffer.from(config.ownerPublicKey, 'hex'))
    ) {
      throw new AmberError('CONFIG_CORRUPT', `${where} is not signed by the owner key it names`);
    }
  } catch (error) {
    if (error instanceof AmberError && (error.code === 'OBJECT_CORRUPT' || error.code === 'CONFIG_CORRUPT')) {
      throw new AmberError('CONFIG_CORRUPT', `the repository config is damaged: ${error.message}`, {
        cause: error,
        hint: 'restore the config object from a copy of the repository; Amber never rewrites it',
      });
    }
    throw error;
  }
  checkConfigFields(config, where);
  const unknown = (config.requiredFeatures ?? []).filter((feature) => !KNOWN_FEATURES.includes(feature));
  if (unknown.length > 0) {
    throw new AmberError(
      'FORMAT_UNSUPPORTED',
      `${where} requires features this Amber does not know: ${unknown.join(', ')}`,
      {
        hint: 'upgrade Amber to open this repository',
      },
    );
  }
  return config;
}

const SUPPORTED = { formatVersion: 1, idHash: 'hmac-sha256', aead: 'aes-256-gcm', compression: 'zstd' } as const;

/** Refuses algorithms this reader does not implement and parameters no writer could have used. */
function checkConfigFields(config: RepoConfig, where: string): void {
  for (const [field, value] of Object.entries(SUPPORTED)) {
    if (config[field] !== value) {
      throw new AmberError(
        'FORMAT_UNSUPPORTED',
        `${where} uses ${field} ${JSON.stringify(config[field])}; this Amber supports ${JSON.stringify(value)}`,
        {
          hint: 'upgrade Amber to open this repository',
        },
      );
    }
  }
  if (config.chunker?.algorithm !== 'fastcdc') {
    throw new AmberError(
      'FORMAT_UNSUPPORTED',
      `${where} uses chunker ${JSON.stringify(config.chunker?.algorithm)}; this Amber supports "fastcdc"`,
    );
  }
  try {
    validateChunkerParams(config.chunker);
  } catch (cause) {
    throw new AmberError('CONFIG_CORRUPT', `${where} has invalid chunker parameters: ${(cause as Error).message}`, {
      cause,
    });
  }
  if (
    !Number.isInteger(config.packTargetBytes) ||
    config.packTargetBytes < 1024 ||
    config.packTargetBytes > 1024 ** 3
  ) {
    throw new AmberError(
      'CONFIG_CORRUPT',
      `${where} has an invalid pack size ${JSON.stringify(config.packTargetBytes)}`,
    );
  }
  if (typeof config.repositoryId !== 'string' || !/^[0-9a-f]{64}$/.test(config.repositoryId)) {
    throw new AmberError('CONFIG_CORRUPT', `${where} has an invalid repository id`);
  }
}
