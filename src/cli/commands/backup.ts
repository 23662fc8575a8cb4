import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { isSourceUrl, openSource, readSourceAccess, type SourceAccess } from '../../source/source-url.ts';
import { isS3Store } from '../bucket.ts';
import { AmberError } from '../../core/errors.ts';
import { formatBytes, formatDurationMs } from '../../core/units.ts';
import { shortId } from '../../core/ids.ts';
import { backup, startWalk, type BackupResult } from '../../engine/backup.ts';
import { scanSources } from '../../engine/scan.ts';
import { readExcludeFile } from '../../source/fs/excludes.ts';
import type { RetentionMode } from '../../storage/store.ts';
import { type CliContext, jsonPath, openOp, print } from '../context.ts';
import { durationFlag, lockModeOption, retainFlag, sizeFlag } from '../options.ts';
import { createProgressLine } from '../progress.ts';
import { EXIT } from '../exit-status.ts';
import { visible } from '../../core/visible-text.ts';

interface BackupFlags {
  tag: string[];
  host?: string;
  exclude: string[];
  excludeFile: string[];
  stdin?: boolean;
  stdinFilename?: string;
  retain?: string;
  lockMode?: RetentionMode;
  cache: boolean;
  force?: boolean;
  dryRun?: boolean;
  sourcePasswordFile?: string;
  sourceTokenFile?: string;
  folder: string[];
  maxMessageSize?: string;
  versions?: boolean;
  sourceTimeout?: string;
  excludeLargerThan?: string;
  excludeIfPresent: string[];
  excludeCaches?: boolean;
  oneFileSystem?: boolean;
  filesFrom: string[];
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerBackup(program: Command, context: CliContext, setExit: (status: number) => void): void {
  program
    .command('backup')
    .description('back up files and directories (or standard input) into a new snapshot')
    .argument('[paths...]', 'files and directories to back up')
    .option('--tag <tag>', 'tag the snapshot (repeatable)', collect, [])
    .option('--host <name>', 'host name to record (default: this machine)')
    .option('--exclude <glob>', 'exclude paths matching the pattern (repeatable)', collect, [])
    .option('--exclude-file <file>', 'read exclude patterns from a file (repeatable)', collect, [])
    .option('--exclude-larger-than <size>', 'leave out files larger than this, e.g. 2G')
    .option(
      '--exclude-if-present <name>',
      'a directory holding a file of this name keeps only that file (repeatable)',
      collect,
      [],
    )
    .option('--exclude-caches', 'a directory holding a valid CACHEDIR.TAG keeps only the tag')
    .option('-x, --one-file-system', 'do not cross into other filesystems: a mount point is kept, empty')
    .option('--files-from <file>', 'also back up the paths listed in this file, one per line (repeatable)', collect, [])
    .option('--stdin', 'back up standard input as one file')
    .option('--stdin-filename <name>', 'file name for --stdin', 'stdin')
    .option(
      '--source-password-file <file>',
      "a source URL's password (postgresql://…), first line of the file (or AMBER_SOURCE_PASSWORD, or the tool's own ~/.pgpass)",
    )
    .option('--source-token-file <file>', 'an OAuth2 access token for an imap source (XOAUTH2), first line of the file')
    .option(
      '--folder <pattern>',
      'imap sources: back up only these folders (IMAP wildcards * and %; repeatable)',
      collect,
      [],
    )
    .option(
      '--source-timeout <duration>',
      'imap sources: end the backup when the server makes no progress this long (default 5m)',
    )
    .option('--versions', 's3src sources: every version of every object too, and the delete markers')
    .option(
      '--max-message-size <size>',
      'imap sources: leave out messages larger than this, each with a warning (e.g. 50M)',
    )
    .option(
      '--retain <duration>',
      "lock the snapshot and everything it needs for this long, e.g. 90d (default: the policy's)",
    )
    .option('--dry-run', 'read and chunk everything, say what a backup would add, write nothing')
    .option(
      '--force',
      'read every file (and every item of a source) again, trusting no parent snapshot; what is unchanged still dedups',
    )
    .option(
      '--no-cache',
      'neither use nor update the local record of unchanged directories (every directory is compared with the parent snapshot)',
    )
    .addOption(
      lockModeOption(
        "governance (lifted only by an approver quorum) or compliance (never lifted); default: the policy's",
      ),
    )
    .addHelpText(
      'after',
      `
Every snapshot is locked: nothing it needs can be deleted before its retention ends. The repository
policy (\`amber policy show\`) gives the default retention and mode and the bounds --retain must keep.

Exit status 3 means the snapshot was written but something was skipped or changed while read.

Examples:
  amber backup --repo /srv/backups/main /home /etc --exclude '*.tmp' --tag nightly
  amber backup /srv/finance --retain 7y --lock-mode compliance
  amber backup / -x --exclude-caches --exclude-larger-than 4G --exclude-if-present .nobackup
  amber backup --files-from /etc/amber/paths.txt
  amber backup postgresql://backup@db1:5432/shop          # a consistent dump of one database
  amber backup postgresql://backup@db1:5432/             # every database, and the roles
  amber backup mysql://backup@db2:3306/shop               # MariaDB or MySQL, one consistent transaction
  amber backup imaps://alice@mail.example.org/            # a mailbox: every folder, incrementally
  amber backup imaps://bob@outlook.office365.com/ --source-token-file /run/amber/bob.token --folder INBOX
  amber backup caldav://alice@dav.example.org/remote.php/dav/calendars/alice/   # every calendar
  amber backup s3src+https://AKIAEXAMPLE@s3.example.net/media/photos   # a bucket's objects (secret: AMBER_SOURCE_PASSWORD)
  pg_dump mydb | amber backup --stdin --stdin-filename mydb.sql --retain 90d

A source URL (postgresql://USER@HOST:PORT/DB, mysql://USER@HOST:PORT/DB) is dumped with the
database's own tools and streamed into the snapshot as SQL files under /postgresql or /mysql
(docs/sources.md); the password never goes on a command line: AMBER_SOURCE_PASSWORD,
--source-password-file, or (PostgreSQL) ~/.pgpass. A mailbox (imap://, imaps://) or a calendar
or address book (caldav://, carddav://) is read incrementally against the previous snapshot of
the same URL (docs/imap.md, docs/dav.md).`,
    )
    .action(async (paths: string[], flags: BackupFlags) => {
      for (const file of flags.filesFrom) paths.push(...(await readPathsFile(file)));
      if (flags.stdin && paths.length > 0) throw new AmberError('USAGE', '--stdin cannot be combined with paths');
      if (!flags.stdin && paths.length === 0)
        throw new AmberError('USAGE', 'name at least one path to back up, or use --stdin', {
          hint: 'amber backup --help shows examples',
        });
      const retainMs =
        flags.retain === undefined ? undefined : retainFlag('--retain', flags.retain, context.clock.nowMs());
      // Ctrl-C or a TERM: said in one line, not a silent 130 with the progress line left behind.
      // The repository needs no cleanup (a backup only adds objects; its snapshot is written last).
      let progressDone = () => {};
      const onSignal = (signal: NodeJS.Signals) => {
        progressDone();
        const error = new AmberError(
          'INTERRUPTED',
          `the backup was interrupted (${signal}) before its snapshot was written; earlier snapshots are intact and the repository is valid`,
          { hint: 'run the backup again' },
        );
        if (context.globals().json)
          process.stderr.write(
            `${JSON.stringify({ error: { code: error.code, message: error.message, hint: error.hint } })}\n`,
          );
        else process.stderr.write(`error: ${error.message} [${error.code}]\nhint: ${error.hint}\n`);
        process.exit(EXIT.interrupted);
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const imapOnly =
        flags.folder.length > 0 ? '--folder' : flags.maxMessageSize !== undefined ? '--max-message-size' : undefined;
      if (imapOnly && !(paths.length === 1 && /^imaps?:\/\//i.test(paths[0])))
        throw new AmberError('USAGE', `${imapOnly} applies to an imap:// or imaps:// source`, {
          hint: 'for files, leave parts out with --exclude',
        });
      if (flags.versions && !(paths.length === 1 && /^s3src(\+https?)?:\/\//i.test(paths[0])))
        throw new AmberError('USAGE', '--versions applies to an s3src:// source', {
          hint: 'amber backup s3src+https://KEYID@ENDPOINT/BUCKET/PREFIX --versions',
        });
      if (paths.some(isSourceUrl)) {
        if (paths.length > 1)
          throw new AmberError('USAGE', 'a source URL is backed up alone, one per snapshot', {
            hint: 'run amber backup once for each URL (the agent does so for each source of its policy file)',
          });
        const repo = await openOp(context);
        const source = await openSource(paths[0], sourceAccess(flags), {
          folders: flags.folder,
          versions: flags.versions,
          stallMs:
            flags.sourceTimeout === undefined ? undefined : durationFlag('--source-timeout', flags.sourceTimeout),
          maxMessageBytes:
            flags.maxMessageSize === undefined ? undefined : sizeFlag('--max-message-size', flags.maxMessageSize),
        });
        const result = await backup({
          repo,
          source,
          tags: flags.tag,
          host: flags.host,
          retainMs,
          lockMode: flags.lockMode,
          force: flags.force,
          dryRun: flags.dryRun,
          onWarning: (warning) => {
            if (!context.globals().json) context.output.err.write(`warning: ${visible(warning.message)}\n`);
          },
        });
        print(context, toJson(result), () => renderSummary(result));
        if (result.partial) setExit(EXIT.partial);
        return;
      }
      const patterns = [...flags.exclude];
      for (const file of flags.excludeFile) patterns.push(...(await readExcludeFile(file)));
      // The walk of the sources starts now: its lstat calls overlap the passphrase's KDF and the index load.
      const walk = flags.stdin ? undefined : startWalk(paths, patterns);
      let repo: Awaited<ReturnType<typeof openOp>>;
      try {
        repo = await openOp(context);
      } catch (error) {
        await walk?.close();
        throw error;
      }
      const { output } = context;
      const totals = output.showProgress && !flags.stdin ? scanSources(paths, patterns) : undefined;
      const progress = createProgressLine(output.err, context.clock, output.showProgress);
      progressDone = () => progress.done();
      const result = await backup({
        repo,
        paths: flags.stdin ? undefined : paths,
        stdin: flags.stdin ? { stream: process.stdin, filename: flags.stdinFilename ?? 'stdin' } : undefined,
        tags: flags.tag,
        host: flags.host,
        exclude: patterns,
        retainMs,
        lockMode: flags.lockMode,
        cache: flags.cache,
        force: flags.force,
        dryRun: flags.dryRun,
        leaveOut: {
          largerThanBytes:
            flags.excludeLargerThan === undefined
              ? undefined
              : sizeFlag('--exclude-larger-than', flags.excludeLargerThan),
          ifPresent: flags.excludeIfPresent,
          caches: flags.excludeCaches,
          oneFileSystem: flags.oneFileSystem,
        },
        walk,
        onWarning: (warning) => {
          progress.done();
          if (!context.globals().json) output.err.write(`warning: ${visible(warning.message)}\n`);
        },
        onProgress: (state) =>
          progress.update({
            files: state.files,
            bytes: state.bytesRead,
            totalBytes: totals?.done ? totals.bytes : undefined,
            label: state.currentPath,
          }),
      });
      progress.done();
      // What the storage billed for (S3 counts each request): a cost figure, not part of the snapshot.
      const requests = isS3Store(repo.store) ? repo.store.requestCounts() : undefined;
      print(
        context,
        { ...toJson(result), ...(requests ? { storageRequests: requests } : {}) },
        () => renderSummary(result) + (requests ? `\n${renderRequests(requests)}` : ''),
      );
      if (result.partial) setExit(EXIT.partial);
    });
}

function toJson(result: BackupResult) {
  return {
    id: result.snapshotId,
    ...result.snapshot,
    partial: result.partial,
    ...(result.dryRun ? { dryRun: true } : {}),
    warnings: result.warnings.map(({ path, ...rest }) => ({ ...jsonPath(path), ...rest })),
    reprotected: result.reprotected,
  };
}

function renderSummary({ snapshotId, snapshot, warnings, partial, reprotected, dryRun }: BackupResult): string {
  const s = snapshot.summary;
  if (dryRun)
    return [
      `Files:       ${s.filesNew} new, ${s.filesChanged} changed, ${s.filesUnchanged} unchanged${s.filesSkipped ? `, ${s.filesSkipped} skipped` : ''}`,
      `Dirs:        ${s.dirs}`,
      `Read:        ${formatBytes(s.bytesRead)}`,
      `Would add:   ${formatBytes(s.bytesAdded)} of new data (before compression), ${s.blobsAdded} blobs`,
      `dry run: nothing was written${lockText(snapshot.retention).replace(', locked', '; it would be locked')}`,
    ].join('\n');
  const lines = [
    `Files:       ${s.filesNew} new, ${s.filesChanged} changed, ${s.filesUnchanged} unchanged${s.filesSkipped ? `, ${s.filesSkipped} skipped` : ''}`,
    `Dirs:        ${s.dirs}`,
    `Read:        ${formatBytes(s.bytesRead)}`,
    `Added:       ${formatBytes(s.bytesAdded)} new data, ${formatBytes(s.bytesStored)} stored after compression and encryption`,
    `Duration:    ${formatDurationMs(s.durationMs)}`,
    `snapshot ${shortId(snapshotId)} saved${lockText(snapshot.retention)}${partial ? ` (incomplete: ${warnings.length} warning${warnings.length === 1 ? '' : 's'} above)` : ''}`,
  ];
  if (reprotected)
    lines.push(
      `finished the protection of ${reprotected} object${reprotected === 1 ? '' : 's'} an interrupted run left unprotected`,
    );
  return lines.join('\n');
}

function renderRequests(counts: Record<string, number>): string {
  const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
  const each = Object.entries(counts)
    .sort(([, a], [, b]) => b - a)
    .map(([command, n]) => `${command.replace(/Command$/, '')} ${n}`);
  return `S3 requests: ${total} (${each.join(', ')})`;
}

function lockText(retention: BackupResult['snapshot']['retention']): string {
  return retention ? `, locked until ${retention.until} (${retention.mode})` : '';
}

/** A source's credentials: --source-password-file (first line) or AMBER_SOURCE_PASSWORD, and --source-token-file. */
export function sourceAccess(flags: { sourcePasswordFile?: string; sourceTokenFile?: string }): SourceAccess {
  return readSourceAccess(
    { passwordFile: flags.sourcePasswordFile, tokenFile: flags.sourceTokenFile },
    (which, file, cause) =>
      new AmberError('USAGE', `cannot read --source-${which}-file ${file}: ${cause.message}`, { cause }),
  );
}

/** --files-from: one path per line; blank lines and lines starting with # are not paths. */
async function readPathsFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new AmberError('USAGE', `cannot read --files-from ${file}: ${(cause as Error).message}`, { cause });
  }
  return text
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.trim() !== '' && !line.startsWith('#'));
}
