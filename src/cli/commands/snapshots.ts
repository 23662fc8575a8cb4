import type { Command } from 'commander';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { AmberError } from '../../core/errors.ts';
import { shortId } from '../../core/ids.ts';
import { formatBytes, formatTime } from '../../core/units.ts';
import { findSnapshot, listSnapshots, type SnapshotEntry } from '../../engine/snapshots.ts';
import { matchesFilter } from '../../engine/snapshot-filter.ts';
import { displayOfSourceUrl, isSourceUrl } from '../../source/source-url.ts';
import { resolve } from 'node:path';
import { copiedFromOf } from '../../engine/copy.ts';
import { resolvePath, walkNodes, rootNode } from '../../engine/tree-walk.ts';
import { loadIndex } from '../../repo/index-loader.ts';
import { type BlobReader, createBlobReader } from '../../repo/blob-reader.ts';
import type { TreeNode } from '../../repo/tree.ts';
import { readMailbox } from '../../engine/mailbox-snapshot.ts';
import { visible } from '../../core/visible-text.ts';
import { displayName, jsonName } from '../../core/byte-names.ts';
import { deviceNumbers } from '../../source/fs/special-files.ts';
import { type CliContext, openOp, print } from '../context.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

export function snapshotJson({ id, snapshot, signer }: SnapshotEntry) {
  return { id, shortId: shortId(id), ...snapshot, signer };
}

export function registerSnapshotCommands(program: Command, context: CliContext): void {
  program
    .command('snapshots')
    .description('list snapshots, oldest first')
    .option('--host <name>', 'only snapshots of this host (repeatable)', collect, [])
    .option(
      '--tag <tags>',
      'only snapshots with these tags, comma-separated for all of them (repeatable: any)',
      collect,
      [],
    )
    .option('--path <path>', 'only snapshots of this path, or source URL, as backed up (repeatable)', collect, [])
    .addHelpText(
      'after',
      `
Examples:
  amber snapshots --repo /srv/backups/main
  amber snapshots --host db1 --tag nightly,verified
  amber snapshots --json | jq '.[] | select(.host == "db1") | .id'`,
    )
    .action(async (flags: { host: string[]; tag: string[]; path: string[] }) => {
      const repo = await openOp(context);
      const filter = {
        hosts: flags.host,
        tags: flags.tag,
        paths: flags.path.map((p) => (isSourceUrl(p) ? displayOfSourceUrl(p) : resolve(p))),
      };
      const entries = (await listSnapshots(repo)).filter(({ snapshot }) => matchesFilter(snapshot, filter));
      print(context, entries.map(snapshotJson), () => renderSnapshots(entries));
    });

  program
    .command('ls')
    .description('list the files in a snapshot')
    .argument('<snapshot>', 'snapshot id, id prefix or "latest"')
    .argument('[path]', 'absolute path inside the snapshot', '/')
    .addHelpText(
      'after',
      `
Examples:
  amber ls latest
  amber ls 3f2a9c1e /home/alice/docs --json

A database snapshot (amber backup postgresql://… or mysql://…) starts with a line naming the server,
its version and the dump's format; its files are the databases' SQL under /postgresql or /mysql.
A mailbox snapshot (amber backup imaps://…) lists its folders and messages (date, size, sender,
subject, flags); \`amber ls ID /imap\` lists its files, \`amber dump ID /imap/INBOX/12.eml\` writes one
message as .eml.`,
    )
    .action(async (ref: string, path: string) => {
      const repo = await openOp(context);
      const entry = await findSnapshot(repo, ref);
      const reader = createBlobReader(repo, (await loadIndex(repo)).index);
      const start = path === '/' ? rootNode(entry.snapshot.tree) : await resolvePath(reader, entry.snapshot.tree, path);
      const json = context.globals().json;
      // A database snapshot says what it is before its files: the server, its version, the format.
      const source = entry.snapshot.source as
        | { kind?: unknown; url?: unknown; serverVersion?: unknown; format?: unknown; databases?: unknown }
        | undefined;
      if (
        !json &&
        path === '/' &&
        source &&
        typeof source === 'object' &&
        (source.kind === 'postgresql' || source.kind === 'mysql')
      )
        context.output.out.write(
          `# ${String(source.url)}: ${source.kind === 'postgresql' ? 'PostgreSQL ' : ''}${String(source.serverVersion).split(' ')[0]}, ${String(source.format)} dump of ${Array.isArray(source.databases) ? source.databases.join(', ') : '?'} (amber restore ${shortId(entry.id)} --to ${String(source.kind)}://…/NEWDB)\n`,
        );
      // A mailbox snapshot at its top: its folders and messages as a mail client lists them.
      if (!json && path === '/' && source && typeof source === 'object' && source.kind === 'imap') {
        context.output.out.write(
          `# ${String(source.url)}: a mailbox (amber restore ${shortId(entry.id)} --to ${String(source.url)}; the files with amber ls ${shortId(entry.id)} /imap)\n`,
        );
        await listMailbox(reader, entry, (line) => context.output.out.write(`${visible(line)}\n`));
        return;
      }
      await walkNodes(reader, start, path === '/' ? '/' : path, (nodePath, node) => {
        if (node === start && path === '/') return;
        context.output.out.write(
          json ? `${JSON.stringify(nodeJson(nodePath, node))}\n` : `${renderNode(nodePath, node)}\n`,
        );
      });
    });

  program
    .command('dump')
    .description('write one file from a snapshot to standard output')
    .argument('<snapshot>', 'snapshot id, id prefix or "latest"')
    .argument('<file>', 'absolute path of the file inside the snapshot')
    .addHelpText(
      'after',
      `
Examples:
  amber dump latest /etc/hosts
  amber dump latest /mydb.sql | psql mydb`,
    )
    .action(async (ref: string, file: string) => {
      const repo = await openOp(context);
      const entry = await findSnapshot(repo, ref);
      const reader = createBlobReader(repo, (await loadIndex(repo)).index);
      const node = await resolvePath(reader, entry.snapshot.tree, file);
      if (node.type !== 'file')
        throw new AmberError('PATH_NOT_FOUND', `"${displayName(file)}" is a ${node.type}, not a file`, {
          hint: 'use `amber ls` to list a directory',
        });
      const chunks = async function* () {
        for (const id of node.content ?? []) yield await reader.readBlob(Buffer.from(id, 'hex'));
      };
      await pipeline(Readable.from(chunks()), context.output.out);
    });
}

/** Each folder of a mailbox snapshot (from its folder.json), then each message: date, sender, subject, flags. */
async function listMailbox(reader: BlobReader, entry: SnapshotEntry, write: (line: string) => void): Promise<void> {
  for (const { dir, stored: folder } of await readMailbox(reader, entry.snapshot.tree, shortId(entry.id))) {
    write(
      `${folder.name}  (${folder.messages.length} message${folder.messages.length === 1 ? '' : 's'}${folder.specialUse ? `, ${folder.specialUse}` : ''})`,
    );
    for (const m of folder.messages)
      write(
        `  /imap/${dir}/${m.uid}.eml  ${(m.date ?? m.internalDate ?? '(no date)         ').slice(0, 16).replace('T', ' ')}  ${formatBytes(m.size).padStart(9)}  ${m.from ?? '-'}  ${m.subject ?? '(no subject)'}${m.flags.length ? `  [${m.flags.join(' ')}]` : ''}`,
      );
  }
}

/**
 * One `ls --json` line. Names, paths and link targets are shown escaped (as in the text listing);
 * where that differs from their bytes, a `…Base64` field beside them holds the bytes exactly.
 */
export function nodeJson(path: string, node: TreeNode) {
  const { content: _content, subtree: _subtree, name, linkTarget, xattrs, ...rest } = node;
  const shownPath = jsonName(path);
  const shownName = jsonName(name);
  const shownTarget = linkTarget === undefined ? undefined : jsonName(linkTarget);
  return {
    path: shownPath.text,
    ...(shownPath.base64 !== undefined && { pathBase64: shownPath.base64 }),
    name: shownName.text,
    ...(shownName.base64 !== undefined && { nameBase64: shownName.base64 }),
    ...rest,
    ...(shownTarget && { linkTarget: shownTarget.text }),
    ...(shownTarget?.base64 !== undefined && { linkTargetBase64: shownTarget.base64 }),
    ...(xattrs && { xattrs: xattrs.map((x) => ({ name: x.name, valueBase64: x.value.toString('base64') })) }),
  };
}

const TYPE_LETTER: Record<string, string> = {
  dir: 'd',
  symlink: 'l',
  fifo: 'p',
  socket: 's',
  chardev: 'c',
  blockdev: 'b',
};

function renderNode(path: string, node: TreeNode): string {
  const mode = (TYPE_LETTER[node.type] ?? '-') + modeString(node.mode) + (node.xattrs?.length ? '+' : '');
  const time = formatTime(Number(BigInt(node.mtimeNs) / 1_000_000n));
  const size =
    node.type === 'file' ? formatBytes(node.sizeBytes) : node.rdev !== undefined ? deviceLabel(BigInt(node.rdev)) : '';
  const target = node.linkTarget !== undefined ? ` -> ${displayName(node.linkTarget)}` : '';
  return `${mode.padEnd(11)} ${String(node.uid).padStart(5)} ${String(node.gid).padStart(5)} ${size.padStart(10)} ${time} ${displayName(path)}${target}`;
}

function deviceLabel(rdev: bigint): string {
  const { major, minor } = deviceNumbers(rdev);
  return `${major}, ${minor}`;
}

/** As ls -l: set-id bits as s/S over the execute bits, the sticky bit as t/T. */
function modeString(mode: number): string {
  const bits = [...'rwxrwxrwx'].map((char, index) => (mode & (1 << (8 - index)) ? char : '-'));
  const special = (index: number, bit: number, letter: string) => {
    if (mode & bit) bits[index] = bits[index] === 'x' ? letter : letter.toUpperCase();
  };
  special(2, 0o4000, 's');
  special(5, 0o2000, 's');
  special(8, 0o1000, 't');
  return bits.join('');
}

/** Copied snapshots say of what, and from which repository. */
function copyMark(snapshot: SnapshotEntry['snapshot']): string {
  const from = copiedFromOf(snapshot);
  return from ? `  (copy of ${shortId(from.snapshot)} from ${shortId(from.repository)})` : '';
}

function renderSnapshots(entries: SnapshotEntry[]): string {
  if (entries.length === 0) return 'no snapshots';
  const rows = entries.map(({ id, snapshot }) => [
    shortId(id),
    formatTime(snapshot.time),
    snapshot.host,
    snapshot.tags.join(','),
    snapshot.paths.join(' ') + (snapshot.flags.length ? `  [${snapshot.flags.join(',')}]` : '') + copyMark(snapshot),
  ]);
  const header = ['ID', 'Time', 'Host', 'Tags', 'Paths'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (row: string[]) =>
    row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]))).join('  ');
  return [line(header), ...rows.map(line), `${entries.length} snapshot${entries.length === 1 ? '' : 's'}`].join('\n');
}
