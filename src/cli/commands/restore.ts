import type { Command } from 'commander';
import { formatBytes } from '../../core/units.ts';
import { shortId } from '../../core/ids.ts';
import { AmberError } from '../../core/errors.ts';
import { findSnapshot } from '../../engine/snapshots.ts';
import { restore } from '../../engine/restore.ts';
import { restoreToSource, type SourceRestoreResult } from '../../engine/restore-to-source.ts';
import { sourceAccess } from './backup.ts';
import { displayName } from '../../core/byte-names.ts';
import { type CliContext, jsonPath, openOp, print } from '../context.ts';
import { createProgressLine } from '../progress.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

interface RestoreFlags {
  target?: string;
  to?: string;
  database?: string;
  sourcePasswordFile?: string;
  sourceTokenFile?: string;
  include: string[];
  exclude: string[];
  overwrite?: boolean;
  folder: string[];
  into?: string;
}

export function registerRestore(program: Command, context: CliContext): void {
  program
    .command('restore')
    .description('restore a snapshot into a directory (the absolute source paths are recreated below it)')
    .argument('<snapshot>', 'snapshot id, id prefix or "latest"')
    .option('--target <dir>', 'directory to restore into')
    .option(
      '--to <url>',
      'restore a source snapshot into a live target: postgresql://USER@HOST:PORT/NEWDB, mysql://…, imaps://USER@HOST/, caldav://…, carddav://…',
    )
    .option(
      '--folder <pattern>',
      'with --to imap(s)://: restore only these folders (IMAP wildcards * and %; repeatable)',
      collect,
      [],
    )
    .option('--into <folder>', 'with --to imap(s)://: restore under this folder, e.g. "Restored 2026-12-01"')
    .option('--database <name>', 'with --to: which database of a whole-server snapshot')
    .option('--source-password-file <file>', "with --to: the server's password (or AMBER_SOURCE_PASSWORD, ~/.pgpass)")
    .option(
      '--source-token-file <file>',
      'with --to imap(s)://: an OAuth2 access token (XOAUTH2) instead of a password',
    )
    .option('--include <path>', 'restore only this absolute path from the snapshot (repeatable)', collect, [])
    .option(
      '--exclude <pattern>',
      "leave out what the pattern matches (backup's exclude patterns; repeatable)",
      collect,
      [],
    )
    .option('--overwrite', 'replace existing files in the target')
    .addHelpText(
      'after',
      `
Files are written under hidden partial names (.NAME.amber-partial-…) and renamed into place when
complete, so a file under its final name is always whole. Ctrl-C removes the partial files and
exits 130; running the same restore again finishes it (complete files are kept, partial files left
by a killed restore are removed). Without --overwrite, anything else in the way of the snapshot's
entries makes the restore refuse before it writes anything (files not in the snapshot are left alone).

With --to, a database snapshot (amber backup postgresql://… or mysql://…) is restored into a live
server: the database is created (an existing one that holds anything is refused unless
--overwrite, which drops it first) and the dump runs, stopping at the first error (PostgreSQL: in
one transaction; MySQL/MariaDB: the database is dropped again); the roles or users of a
whole-server snapshot come first. An older server than the dump's is refused.

A calendar or address-book snapshot (amber backup caldav://… or carddav://…) is restored into an
account: each collection made where missing, each item PUT unless it is there already (docs/dav.md).

A mailbox snapshot (amber backup imaps://…) is restored into an account: each folder is created
where missing (under --into, if given), and each message APPENDed with its flags, keywords and
internal date; a message already in the folder (same Message-ID and bytes) is not added twice.

Examples:
  amber restore latest --target /tmp/restore
  amber restore latest --to postgresql://postgres@db2:5432/shop_restored
  amber restore 3f2a9c1e --target /tmp/r --include /home/alice/docs
  amber restore latest --target /tmp/r --exclude '*.iso' --exclude /home/alice/cache
  amber restore latest --to imaps://alice@mail.example.org/ --into "Restored 2026-12-01"`,
    )
    .action(async (ref: string, flags: RestoreFlags) => {
      if (Boolean(flags.target) === Boolean(flags.to))
        throw new AmberError(
          'USAGE',
          flags.to ? 'give --target or --to, not both' : 'restore needs --target DIR (or --to URL for a database)',
        );
      const repo = await openOp(context);
      const snapshot = await findSnapshot(repo, ref);
      if (flags.to) {
        // Ctrl-C or a TERM ends a restore into a live target between two items, with INTERRUPTED.
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        const restored = await restoreToSource({
          signal: stop.signal,
          repo,
          snapshot,
          to: flags.to,
          access: sourceAccess(flags),
          database: flags.database,
          overwrite: flags.overwrite,
          folders: flags.folder,
          into: flags.into,
        }).finally(() => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        });
        print(context, restored, renderRestored);
        return;
      }
      const target = flags.target!;
      const total = snapshot.snapshot.summary?.bytesRead;
      // What the backup skipped is not in the snapshot: say so, or a restore of it looks complete.
      if (snapshot.snapshot.flags.includes('partial') && !context.globals().quiet && !context.globals().json) {
        context.output.err.write(
          `note: snapshot ${shortId(snapshot.id)} is partial: its backup skipped entries it could not read (it exited 3 and named them), so they are not restored\n`,
        );
      }
      const progress = createProgressLine(context.output.err, context.clock, context.output.showProgress);
      // Ctrl-C or a TERM stops the restore cleanly: its partial files are removed, every file under
      // its final name is complete, and the error (INTERRUPTED, exit 130) says how to finish.
      const stop = new AbortController();
      const onSignal = () => {
        progress.done();
        stop.abort();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const result = await restore({
        repo,
        snapshot,
        target,
        include: flags.include,
        exclude: flags.exclude,
        overwrite: flags.overwrite,
        checkFirst: true,
        signal: stop.signal,
        onProgress: (state) =>
          progress.update({
            files: state.files,
            bytes: state.bytesWritten,
            totalBytes: flags.include.length ? undefined : total,
          }),
        onWarning: (warning) => {
          progress.done();
          const level = warning.level ?? 'error';
          if (!context.globals().json) context.output.err.write(`${level}: ${warning.message} [${warning.code}]\n`);
        },
      }).finally(() => {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
      });
      progress.done();
      print(
        context,
        {
          snapshot: snapshot.id,
          target: flags.target,
          ...result,
          errors: result.errors.map(({ path, ...rest }) => ({ ...jsonPath(path), ...rest })),
          skipped: result.skipped.map(({ path, ...rest }) => ({ ...jsonPath(path), ...rest })),
          notSet: result.notSet.map(({ example, ...rest }) => ({ ...rest, example: jsonPath(example) })),
        },
        (r) =>
          `restored snapshot ${shortId(r.snapshot)}: ${r.files} files, ${r.dirs} dirs, ${formatBytes(r.bytesWritten)} to ${r.target}` +
          (r.alreadyPresent
            ? `\n${r.alreadyPresent} files were already restored (same size, mode and time) and were kept`
            : '') +
          (r.partialsRemoved ? `\nremoved ${r.partialsRemoved} partial files left by an interrupted restore` : '') +
          (r.skipped.length
            ? `\nnot recreated: ${result.skipped.map((entry) => `${displayName(entry.path)} (${entry.type})`).join(', ')}`
            : '') +
          result.notSet
            .map(
              (n) =>
                `\nnot set: ${n.reason} (${n.count} entr${n.count === 1 ? 'y' : 'ies'}, first ${displayName(n.example)})`,
            )
            .join(''),
      );
      if (result.errors.length > 0) {
        const onlyExisting = result.errors.every((error) => error.code === 'TARGET_EXISTS');
        const onlyTarget = result.errors.every((error) =>
          ['TARGET_EXISTS', 'TARGET_UNWRITABLE', 'STORAGE_FULL', 'UNSAFE_PATH'].includes(error.code),
        );
        throw new AmberError(
          'RESTORE_INCOMPLETE',
          `${result.errors.length} entr${result.errors.length === 1 ? 'y' : 'ies'} could not be restored`,
          {
            hint: onlyExisting
              ? 'restore into an empty directory, or pass --overwrite to replace existing files'
              : onlyTarget
                ? 'the target refused the entries named above (see each error): nothing in the repository is damaged'
                : 'the errors above name each entry; run `amber verify --read-data` to see what is damaged',
          },
        );
      }
    });
}

const some = (names: string[]) => `${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}`;

/** One line for a restore into a live target, by its kind. */
function renderRestored(r: SourceRestoreResult): string {
  switch (r.kind) {
    case 's3':
      return `restored ${r.objects} object(s) into ${r.to}: ${r.put} written (${formatBytes(r.bytes)})${r.present ? `, ${r.present} were there already` : ''}${r.conflicts.length ? `; ${r.conflicts.length} differ from what is there and were left as they are: ${some(r.conflicts)}` : ''}`;
    case 'caldav':
    case 'carddav':
      return `restored ${r.collections} ${r.kind === 'caldav' ? 'calendar' : 'address book'}(s) into ${r.to} (${r.created} made): ${r.put} item(s) written (${formatBytes(r.bytes)})${r.present ? `, ${r.present} were there already` : ''}${r.conflicts.length ? `; ${r.conflicts.length} differ from what is there and were left as they are: ${some(r.conflicts)}` : ''}`;
    case 'imap':
      return `restored ${r.folders} folder(s) into ${r.to}: ${r.appended} message(s) appended (${formatBytes(r.bytes)})${r.present ? `, ${r.present} were there already and were left as they are` : ''}`;
    default:
      return `restored database ${r.database} into ${r.to} (${r.kind === 'postgresql' ? 'PostgreSQL ' : ''}${r.serverVersion}): ${formatBytes(r.bytes)} of SQL${r.rolesSkipped ? `; ${r.rolesSkipped} role(s) existed already and were kept` : ''}`;
  }
}
