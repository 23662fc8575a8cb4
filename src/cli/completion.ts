// Shell completion and the manual page, both generated from the one command tree: whatever
// commands and options amber has, its completion and its man page have, with nothing to keep in step.
import type { Command, Option } from 'commander';

interface Entry {
  /** The words that reach it: ["lock", "extend"]. */
  path: string[];
  command: Command;
}

function entries(command: Command, path: string[] = []): Entry[] {
  return command.commands
    .filter((sub) => sub.name() !== 'help')
    .flatMap((sub) => [{ path: [...path, sub.name()], command: sub }, ...entries(sub, [...path, sub.name()])]);
}

const longFlags = (options: readonly Option[]) => options.map((option) => option.long).filter((f): f is string => !!f);
const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

/** A completion script for bash, zsh (through bashcompinit) or fish. */
export function completionScript(program: Command, shell: 'bash' | 'zsh' | 'fish'): string {
  const all = entries(program);
  const globals = longFlags(program.options);
  if (shell === 'fish') {
    const lines = [
      '# amber completion for fish: amber completion fish > ~/.config/fish/completions/amber.fish',
      'complete -c amber -f',
    ];
    for (const flag of globals) lines.push(`complete -c amber -l ${flag.slice(2)}`);
    for (const { path, command } of all) {
      const parent = path.slice(0, -1);
      const condition =
        parent.length === 0
          ? '__fish_use_subcommand'
          : `__fish_seen_subcommand_from ${parent.at(-1)}; and not __fish_seen_subcommand_from ${command.parent!.commands.map((c) => c.name()).join(' ')}`;
      lines.push(
        `complete -c amber -n '${condition}' -a ${path.at(-1)} -d ${JSON.stringify(oneLine(command.description()).slice(0, 80))}`,
      );
      for (const flag of longFlags(command.options))
        lines.push(`complete -c amber -n '__fish_seen_subcommand_from ${path.at(-1)}' -l ${flag.slice(2)}`);
    }
    return `${lines.join('\n')}\n`;
  }
  // bash (and zsh): the words so far pick the command; the next word is a subcommand or an option.
  const cases = all.map(({ path, command }) => {
    const words = [
      ...command.commands.filter((c) => c.name() !== 'help').map((c) => c.name()),
      ...longFlags(command.options),
      ...globals,
    ];
    return `    '${path.join(' ')}') words='${words.join(' ')}' ;;`;
  });
  const top = [...program.commands.filter((c) => c.name() !== 'help').map((c) => c.name()), ...globals];
  const script = `# amber completion for ${shell}: eval "$(amber completion ${shell})"
_amber() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path='' word words i
  # The command words typed so far (not options, not their values), as far as they name a command.
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=\${COMP_WORDS[i]}
    [[ $word == -* ]] && continue
    case "\${path:+$path }$word" in
${all.map(({ path }) => `      '${path.join(' ')}') path="\${path:+$path }$word" ;;`).join('\n')}
    esac
  done
  case "$path" in
    '') words='${top.join(' ')}' ;;
${cases.join('\n')}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _amber amber
`;
  return shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${script}` : script;
}

/** The manual page amber(1) in roff: every command with its usage, description, options and the help's own text. */
export function manPage(program: Command, version: string, date: string): string {
  const roff = (text: string) =>
    text
      .replace(/\\/g, '\\e')
      .replace(/^([.'])/gm, '\\&$1')
      .replace(/-/g, '\\-');
  const helpAfter = (command: Command) => {
    let text = '';
    command.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
    command.outputHelp();
    const i = text.indexOf('\n\n', text.lastIndexOf('Options:'));
    return i < 0 ? '' : text.slice(i).trim();
  };
  const out = [
    `.TH AMBER 1 "${date}" "amber ${version}" "User Commands"`,
    '.SH NAME',
    `amber \\- ${roff(oneLine(program.description()))}`,
    '.SH SYNOPSIS',
    '.B amber',
    '[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]',
    '.SH GLOBAL OPTIONS',
  ];
  for (const option of program.options) out.push('.TP', `.B ${roff(option.flags)}`, roff(oneLine(option.description)));
  out.push('.SH COMMANDS');
  for (const { path, command } of entries(program)) {
    out.push('.SS', `amber ${path.join(' ')} ${roff(command.usage())}`, roff(oneLine(command.description())));
    for (const option of command.options.filter((o) => o.long !== '--help'))
      out.push('.TP', `.B ${roff(option.flags)}`, roff(oneLine(option.description)));
    const after = helpAfter(command);
    if (after) out.push('.PP', '.nf', roff(after), '.fi');
  }
  out.push(
    '.SH SEE ALSO',
    'The README and docs/ of the package (docs/errors.md lists every error code and exit status).',
  );
  return `${out.join('\n')}\n`;
}
