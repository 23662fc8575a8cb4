// PLACEHOLDER until the xattr module lands (fidelity-xattr branch).
import type { EntryType } from './entry-meta.ts';

export interface Xattr {
  name: string;
  value: Buffer;
}
export interface XattrFailure {
  kind: string;
  reason: string;
}
export function readXattrs(_path: string, _type: EntryType): Xattr[] {
  return [];
}
export function writeXattrs(_path: string, _type: EntryType, _xattrs: Xattr[]): XattrFailure[] {
  return [];
}
export function writeXattrsFd(_fd: number, _xattrs: Xattr[]): XattrFailure[] {
  return [];
}
