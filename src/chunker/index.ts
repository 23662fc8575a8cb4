// Content-defined chunking: splits byte streams into deduplicable chunks (FastCDC). Pure, no I/O.
export {
  chunksOf,
  chunkStream,
  createChunker,
  createGearTable,
  DEFAULT_CHUNKER_PARAMS,
  GEAR_SEED_BYTES,
  validateChunkerParams,
} from './fastcdc.ts';
export type { Chunker, ChunkerParams } from './fastcdc.ts';
