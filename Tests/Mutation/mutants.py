#!/usr/bin/env python3
"""The mutant list of Tests/Mutation/mutants.txt: read, checked, applied, restored.

Used by Tests/Mutation/run.sh (which builds and tests); on its own:

    mutants.py names LIST                      every mutant's name, in order
    mutants.py field LIST NAME FIELD           one field (tests, timeout, file)
    mutants.py check LIST ROOT [NAME...]       each mutant's lines are found exactly once
    mutants.py apply LIST ROOT NAME BACKUP     mutates ROOT's file, keeping the original in BACKUP
    mutants.py restore ROOT BACKUP             puts the original back (if a mutant is applied)
    mutants.py sync SOURCE COPY                makes COPY hold SOURCE's files (tracked and
                                               untracked, not ignored), writing only what differs

Lines are compared without their leading and trailing whitespace, so re-indenting code
does not lose a mutant; a mutant whose lines are not found exactly once in its file is an
error, never skipped.
"""

import os
import shutil
import subprocess
import sys

FIELDS = {"file", "line", "into", "tests", "timeout", "why"}


class ListError(Exception):
    pass


def parse(path):
    """The mutants of the list at `path`, in order: dicts of their fields."""
    mutants = []
    current = None
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            text = raw.rstrip("\n")
            stripped = text.strip()
            if not stripped or stripped.startswith("#"):
                continue
            key, _, value = stripped.partition(" ")
            value = value.strip()
            if key == "mutant":
                if not value or " " in value:
                    raise ListError(f"{path}:{number}: 'mutant' takes one name")
                if any(m["name"] == value for m in mutants):
                    raise ListError(f"{path}:{number}: mutant {value} is listed twice")
                current = {"name": value, "line": [], "into": [], "at": number}
                mutants.append(current)
                continue
            if current is None:
                raise ListError(f"{path}:{number}: '{key}' before the first 'mutant'")
            if key not in FIELDS:
                raise ListError(f"{path}:{number}: unknown field '{key}'")
            if key in ("line", "into"):
                current[key].append(value)
            else:
                current[key] = value
    for mutant in mutants:
        where = f"{path}:{mutant['at']}: mutant {mutant['name']}"
        if "file" not in mutant:
            raise ListError(f"{where}: no 'file'")
        if not mutant["line"] or len(mutant["line"]) != len(mutant["into"]):
            raise ListError(f"{where}: needs one 'into' per 'line' (and at least one)")
        if mutant["line"] == mutant["into"]:
            raise ListError(f"{where}: 'into' changes nothing")
    return mutants


def find(mutant, root):
    """(file lines, index of the block) for `mutant` in `root`; raises ListError saying why not."""
    path = os.path.join(root, mutant["file"])
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except OSError:
        raise ListError(f"file {mutant['file']} not found")
    block = mutant["line"]
    stripped = [line.strip() for line in lines]
    starts = [i for i in range(len(lines) - len(block) + 1) if stripped[i:i + len(block)] == block]
    if not starts:
        raise ListError("line not found")
    if len(starts) > 1:
        numbers = ", ".join(str(i + 1) for i in starts)
        raise ListError(f"line not found exactly once (lines {numbers})")
    return lines, starts[0]


def by_name(mutants, name):
    for mutant in mutants:
        if mutant["name"] == name:
            return mutant
    raise ListError(f"no mutant named {name}")


def apply(mutant, root, backup):
    lines, start = find(mutant, root)
    path = os.path.join(root, mutant["file"])
    os.makedirs(backup, exist_ok=True)
    shutil.copyfile(path, os.path.join(backup, "original"))
    with open(os.path.join(backup, "file"), "w", encoding="utf-8") as handle:
        handle.write(mutant["file"])
    for offset, replacement in enumerate(mutant["into"]):
        line = lines[start + offset]
        indent = line[:len(line) - len(line.lstrip())]
        # Deleting a line's code keeps the line, so line numbers in errors stay right.
        lines[start + offset] = indent + replacement if replacement else ""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return start + 1


def restore(root, backup):
    """Puts back the file a mutant changed; True if there was one."""
    record = os.path.join(backup, "file")
    if not os.path.exists(record):
        return False
    with open(record, encoding="utf-8") as handle:
        relative = handle.read()
    # A plain copy (new modification time): the build sees the file change back.
    shutil.copyfile(os.path.join(backup, "original"), os.path.join(root, relative))
    os.remove(record)
    os.remove(os.path.join(backup, "original"))
    return True


def sync(source, copy):
    """Makes `copy` hold the files git lists in `source` (tracked, and untracked but not
    ignored: work in progress is tested too), writing only files that differ so the copy's
    build stays incremental; removes files it no longer lists (its .build stays)."""
    listed = subprocess.run(
        ["git", "-C", source, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True).stdout.decode().split("\0")
    files = {name for name in listed if name and os.path.isfile(os.path.join(source, name))}
    # Ignored, but it pins the dependencies the working tree builds with.
    if os.path.isfile(os.path.join(source, "Package.resolved")):
        files.add("Package.resolved")
    for name in sorted(files):
        origin, target = os.path.join(source, name), os.path.join(copy, name)
        with open(origin, "rb") as handle:
            data = handle.read()
        try:
            with open(target, "rb") as handle:
                if handle.read() == data and os.stat(origin).st_mode == os.stat(target).st_mode:
                    continue
        except OSError:
            pass
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(origin, target)
        shutil.copymode(origin, target)
    for directory, subdirectories, names in os.walk(copy):
        relative = os.path.relpath(directory, copy)
        if relative == ".":
            subdirectories[:] = [d for d in subdirectories if d != ".build"]
        for name in names:
            path = os.path.normpath(os.path.join(relative, name))
            if path not in files:
                os.remove(os.path.join(directory, name))


def main(arguments):
    command = arguments[0] if arguments else ""
    try:
        if command == "names":
            for mutant in parse(arguments[1]):
                print(mutant["name"])
        elif command == "field":
            mutant = by_name(parse(arguments[1]), arguments[2])
            print(mutant.get(arguments[3], ""))
        elif command == "check":
            mutants = parse(arguments[1])
            names = arguments[3:] or [m["name"] for m in mutants]
            failed = False
            for name in names:
                try:
                    find(by_name(mutants, name), arguments[2])
                except ListError as error:
                    print(f"error {name}: {error}")
                    failed = True
            return 1 if failed else 0
        elif command == "apply":
            mutant = by_name(parse(arguments[1]), arguments[3])
            print(f"{mutant['file']}:{apply(mutant, arguments[2], arguments[4])}")
        elif command == "restore":
            restore(arguments[1], arguments[2])
        elif command == "sync":
            sync(arguments[1], arguments[2])
        else:
            print(__doc__.strip(), file=sys.stderr)
            return 2
    except ListError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
