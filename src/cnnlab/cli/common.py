"""Shared pieces of the command line: a one-line-error parser, settings read from the options
(``config_from_args``, ``--resume``), and the options several commands share. What a typed
value must be is :mod:`cnnlab.cli.values`; what commands show and write, :mod:`cnnlab.cli.shown`."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from cnnlab.cli.values import (
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    random_seed,
)
from cnnlab.errors import CnnlabError
from cnnlab.words import nearest


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends each option's text with its default, when it has a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        unset = any(default is v for v in (None, False, argparse.SUPPRESS)) or default in ([], "")
        positional = not action.option_strings and action.nargs not in ("?", "*")
        if not action.help or "default" in action.help or unset or positional:
            return action.help
        if default is True:  # a --switch / --no-switch pair
            return f"{action.help} (default: on)"
        if isinstance(default, (tuple, list)):  # as it is typed: 20,56, not (20, 56)
            shown = ",".join(map(str, default)).replace("%", "%%")
            return f"{action.help} (default: {shown})"
        return f"{action.help} (default: %(default)s)"


class ParserDone(Exception):
    """``--help`` was shown: :func:`cnnlab.cli.main` returns ``status`` instead of argparse's
    ``sys.exit`` (a notebook calling ``main(["--help"])`` gets 0, not a ``SystemExit``)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2, and shows defaults."""

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._print_message(message, sys.stderr)
        raise ParserDone(status)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        # No abbreviations: with them, classify's `--backbone resnet18` silently became
        # `--backbone-lr-mult resnet18` ("invalid float value"), and every new option could
        # change what an old abbreviation meant. A misspelt option is named instead (below).
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """As argparse, but a command without subcommands refuses options it does not know
        itself, so the error names the command and suggests its own options."""
        self._given = list(sys.argv[1:] if args is None else args)  # for error(), below
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and self._subparsers is None:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._suggest(extras)}")
        return namespace, extras

    def _suggest(self, extras: Sequence[str]) -> str:
        """`` (did you mean --batch-size?)`` for the first unknown option close to one of this
        command's own, or the name this command gives a setting others call otherwise."""
        known = list(self._option_string_actions)
        positional = [
            a for a in self._actions if not a.option_strings and a.help != argparse.SUPPRESS
        ]
        by_position = " ".join(str(a.metavar or a.dest).upper() for a in positional)
        for extra in extras:
            option = extra.split("=", 1)[0]
            if not option.startswith("-") or option in known:
                continue
            name = option.lstrip("-").replace("-", "_")
            if any(a.dest == name for a in positional):  # `cnnlab style --content x.jpg`
                return f" ({name} is given by position: {self.prog} {by_position})"
            spelt = difflib.get_close_matches(option, SYNONYMS, n=1, cutoff=0.8)
            others = SYNONYMS[spelt[0]] if spelt else ()
            synonym = next((s for s in others if s in known), None)
            if synonym:
                return f" (this command calls it {synonym})"
            longer = [k for k in known if k.startswith(option)]  # what an abbreviation meant
            close = longer if len(longer) == 1 else []
            close = close or difflib.get_close_matches(option, known, n=1, cutoff=0.7)
            if close:
                return f" (did you mean {close[0]}?)"
        return ""

    def _loose(self) -> list[str]:
        """The words given without an option before them (not an option's value)."""
        given = getattr(self, "_given", [])
        loose = []
        for before, arg in zip(["", *given], given, strict=False):
            action = self._option_string_actions.get(before.split("=", 1)[0])
            takes_value = action is not None and action.nargs != 0 and "=" not in before
            if not arg.startswith("-") and not takes_value:
                loose.append(arg)
        return loose

    def _where_it_goes(self, message: str) -> str:
        """Where a word given without its option goes: ``; to use best.pt, put --checkpoint
        before it`` for a checkpoint (``cnnlab classify eval best.pt``) and `` (put --data
        before it)`` for a folder (``cnnlab classify train photos/``), where this command takes
        them so; ``; to use photos/, put --data before it`` where ``--data`` is required
        (``cnnlab data check classify photos/``). An image file needs no hint: every command
        with ``--image`` also takes its images typed last."""
        options = self._option_string_actions
        loose = self._loose()
        pt = checkpoint_among(loose)
        unrecognized = message.startswith("unrecognized arguments:")
        if pt and "--checkpoint" in options:
            if unrecognized and pt in message:
                return " (put --checkpoint before it)"
            if "--checkpoint" in message:
                return f"; to use {pt}, put --checkpoint before it"
        if message.endswith("required: --data") and "--data" in options:
            chosen = {str(c) for a in self._actions if a.choices for c in a.choices}
            folder = next((a for a in loose if a not in chosen and Path(a).exists()), None)
            if folder:  # `cnnlab data check classify photos/`
                return f"; to use {folder}, put --data before it"
        if not unrecognized:
            return ""
        for path in (Path(a) for a in loose if a in message):
            if path.is_dir() and "--data" in options:
                return " (put --data before it)"
        return ""

    def _what_is_missing(self, message: str) -> str:
        """`` (model: a registered model, see cnnlab models)``: the help of each positional
        argparse says is required, and its choices where it has them, so the error says what
        to give (``cnnlab summary``, ``cnnlab data check``)."""
        missing = re.search(r"the following arguments are required: (.*)$", message)
        if not missing:
            return ""
        names = missing[1].split(", ")
        helps = [  # and what it may be, where argparse knows (`cnnlab data check`)
            f"{a.dest}: {a.help}"
            + (f", one of {', '.join(map(str, a.choices))}" if a.choices else "")
            for a in self._actions
            if not a.option_strings and a.dest in names and a.help
        ]
        return f" ({'; '.join(helps)})" if helps else ""

    def error(self, message: str) -> NoReturn:
        words = self.prog.split()
        if message.endswith("required: --checkpoint") and len(words) > 1:  # which to give
            from cnnlab.engine.run_folders import checkpoint_hint

            message += f" ({checkpoint_hint(words[1])})"
        message += self._where_it_goes(message) + self._what_is_missing(message)
        subcommands = next(
            (a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None
        )
        if subcommands and message.endswith(f"arguments are required: {subcommands.dest}"):
            unknown = [  # `cnnlab --jsn`: the misspelt option, not the missing command
                a
                for a in getattr(self, "_given", [])
                if a.startswith("-") and a.split("=", 1)[0] not in self._option_string_actions
            ]
            message = (
                f"unrecognized arguments: {' '.join(unknown)}{self._suggest(unknown)}"
                if unknown
                # `cnnlab classify` alone: name what may follow
                else (
                    f"give one of: {', '.join(subcommands.choices)} "
                    f"(`{self.prog} --help` says what each does)"
                )
            )
        choice = re.search(r"invalid choice: '?([^' ]*)'? \(choose from (.*)\)$", message)
        if choice:
            known = [c.strip("'\" ") for c in choice[2].split(",")]
            if subcommands and message.startswith(f"argument {subcommands.dest}:"):
                # argparse's "argument command: invalid choice: 'x' (choose from 'a', 'b')"
                kind = "command" if len(words) == 1 else "subcommand"
                message = f"no {kind} {choice[1]!r}; give one of: {', '.join(known)}"
            message += nearest(choice[1], known)
        # the root's own errors need no "cnnlab: " again after "cnnlab: error: "
        raise CnnlabError(f"{self.prog}: {message}" if len(words) > 1 else message)


def checkpoint_among(words: Sequence[str]) -> str | None:
    """The first ``.pt`` / ``.pth`` file among words given without an option before them
    (``cnnlab classify predict best.pt photo.jpg``), for the hint to put ``--checkpoint``
    before it."""
    return next((w for w in words if w.endswith((".pt", ".pth"))), None)


# The name other commands (or other tools) give a setting -> what a command may call it instead.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "--backbone": ("--model",),
    "--model": ("--backbone",),
    "--arch": ("--model", "--backbone"),
    "--learning-rate": ("--lr",),
    "--weights": ("--pretrained", "--checkpoint"),
    "--output": ("--out", "-o"),
    "-o": ("--out",),
    "--out": ("-o",),
    "--output-dir": ("--out",),
    "--epoch": ("--epochs",),
    # what Ultralytics (imgsz, batch, lr0) and timm (img-size) users type out of habit
    "--imgsz": ("--image-size",),
    "--img-size": ("--image-size",),
    "--size": ("--image-size",),
    "--batch": ("--batch-size",),
    "--lr0": ("--lr",),
    "--count": ("--images", "--scenes"),
    "--num-images": ("--images", "--scenes"),
    "--scenes": ("--images",),  # predict's new scenes; train and data scenes count --images
}


C = TypeVar("C")


def typed_dests(parser: argparse.ArgumentParser, args: argparse.Namespace) -> set[str]:
    """What the options typed (``args.typed``, as given: ``--no-mirror``, ``--root``) set, by
    the parser of the command that ran (``mirror``, ``data_root``)."""
    leaf = parser
    while True:  # cnnlab -> classify -> train: down the subcommands chosen
        sub = next((a for a in leaf._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or getattr(args, sub.dest, None) not in sub.choices:
            break
        leaf = sub.choices[getattr(args, sub.dest)]
    options = leaf._option_string_actions
    return {options[o].dest for o in getattr(args, "typed", ()) if o in options}


def config_from_args(cls: type[C], args: argparse.Namespace, **overrides: Any) -> C:
    """The settings dataclass ``cls`` filled from the parsed options of the same names
    (``--image-size`` -> ``image_size``); an option left unset (``None``) keeps the dataclass
    default. Parsers take their defaults from the dataclass, so there is one source of each.
    With ``--config RUN``, the settings not typed come from that run
    (:mod:`cnnlab.cli.run_settings`)."""
    values = {
        f.name: getattr(args, f.name)
        for f in fields(cls)  # type: ignore[arg-type]
        if getattr(args, f.name, None) is not None
    }
    if getattr(args, "config", None):  # another run's settings, but for the options typed
        from cnnlab.cli.run_settings import settings_from_run, typed_fields

        typed = typed_fields(args, {f.name for f in fields(cls)})  # type: ignore[arg-type]
        ran = settings_from_run(args.config, cls, args.command)
        values |= {k: v for k, v in ran.items() if k not in typed}
    return cls(**{**values, **overrides})


def resumed_config(cls: type[C], args: argparse.Namespace) -> C:
    """:func:`config_from_args`, refusing with ``--resume`` any setting given other than its
    default: a resumed run continues with the settings it was started with (only ``--device``
    may change)."""
    if getattr(args, "resume", None) and getattr(args, "config", None):
        raise CnnlabError(
            f"--resume continues {args.resume} with its own settings; drop --config {args.config}"
        )
    config = config_from_args(cls, args)
    if getattr(args, "resume", None):
        default = vars(cls())
        changed = [  # as typed: a switch on by default was given as --no-<switch>
            f"--{'no-' if v is False and default[f] is True else ''}{f.replace('_', '-')}"
            for f, v in vars(config).items()
            if f != "device" and v != default[f]
        ]
        if changed:
            longer = ""
            if "--epochs" in changed:  # the one-cycle schedule spans the epochs it began with
                longer = " (its learning-rate schedule spans its own epochs: to train longer, "
                longer += "start a new run"
                # a classifier's whole; a localizer's or detector's backbone (a U-Net's
                # encoder only where the model has one: not said)
                whose = {"cache_features": "its weights", "backbone": "its backbone's weights"}
                said = next((w for k, w in whose.items() if k in default), None)
                if "pretrained" in default and said:
                    best = Path(args.resume).parent / "best.pt"
                    longer += f", e.g. from {said}: --pretrained {best}"
                longer += ")"
            raise CnnlabError(
                f"--resume continues {args.resume} with its own settings; drop "
                f"{', '.join(changed)}{longer}"
            )
    return config


def add_resume(parser: argparse.ArgumentParser) -> None:
    """``--resume`` and ``--config``: a train command continues a run, or starts from one's
    settings."""
    from cnnlab.cli.run_settings import add_config_option

    parser.add_argument(
        "--resume",
        help="a run's last.pt: continue exactly where it stopped, with its own settings",
    )
    add_config_option(parser)


class ImageFiles(argparse.Action):
    """Positional image paths, where a folder stands for the image files under it, less those
    that cannot be read (``skipped_files``)."""

    videos = False  # whether a folder's video files are among them too

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        from cnnlab.data.folder import image_files

        skipped: list[str] = getattr(namespace, "skipped_files", None) or []
        setattr(namespace, self.dest, image_files(list(values or []), skipped, self.videos))
        namespace.skipped_files = skipped  # said by cnnlab.cli.main, and in --json


class ImageOrVideoFiles(ImageFiles):
    """:class:`ImageFiles` of a command that reads videos: a folder stands for its video files
    as well."""

    videos = True


def add_image_files(
    parser: argparse.ArgumentParser, help: str, nargs: str = "*", videos: bool = False
) -> None:
    """The positional ``images``: files, or folders standing for the images under them (and,
    for a command that reads a video's frames, ``videos``, the videos under them too)."""
    action = ImageOrVideoFiles if videos else ImageFiles
    parser.add_argument("images", action=action, nargs=nargs, help=help)


def add_backbone_weights(parser: argparse.ArgumentParser, defaults: Any) -> None:
    """``--pretrained``, ``--freeze`` and ``--backbone-lr-mult`` of a task whose model reads a
    classifier's features (``--backbone``): transfer learning (:mod:`cnnlab.engine.transfer`);
    ``defaults``: the task's config, whose fields give the defaults."""
    parser.add_argument(
        "--pretrained",
        default=defaults.pretrained,
        help="the backbone's starting weights: a torchvision weights file (resnet18-f37072fd.pth), "
        "a cnnlab classifier's checkpoint, or a best.pt of a model with such a backbone",
    )
    parser.add_argument(
        "--freeze",
        default=defaults.freeze,
        help="none; backbone (train only the layers after it, its batch norms' statistics kept); "
        "or stages:K (its first K blocks: for a ResNet the stem, then layer1, ...)",
    )
    parser.add_argument(
        "--backbone-lr-mult",
        type=non_negative_float,
        default=defaults.backbone_lr_mult,
        help="learning-rate factor for the backbone (0.1: fine-tune pretrained features gently)",
    )


def add_device(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    parser.add_argument("--device", default=default, help="auto, cpu, cuda, cuda:N or mps")


def add_checkpoint_split(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint`` (required) and ``--split`` of an eval command."""
    parser.add_argument("--checkpoint", required=True, help="a run's best.pt or last.pt")
    parser.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default="test",
        help="the split of the run's data to score",
    )


def add_eval_data(parser: argparse.ArgumentParser, kinds: str) -> None:
    """``--data`` of an eval command: other labelled data to score (:mod:`cnnlab.engine.eval_data`:
    classes matched by name; every image, or ``--split`` of data with split folders)."""
    parser.add_argument(
        "--data",
        help=f"score other labelled data instead ({kinds}; the same class names): all of "
        "it, or --split where it has train/val/test folders",
    )


def add_schedule(parser: argparse.ArgumentParser, d: Any, task: str) -> None:
    """``--epochs --batch-size --lr --seed --device --out`` with the defaults of the settings
    dataclass ``d`` (localize, detect and segment train)."""
    parser.add_argument(
        "--epochs", type=positive_int, default=d.epochs, help="passes over the training data"
    )
    add_patience(parser, d.patience)
    parser.add_argument(
        "--batch-size", type=positive_int, default=d.batch_size, help="images per step"
    )
    parser.add_argument("--lr", type=positive_float, default=d.lr, help="peak learning rate")
    parser.add_argument(
        "--seed", type=random_seed, default=d.seed, help="seeds the data, weights and shuffling"
    )
    add_device(parser, d.device)
    add_run_folder(parser, task)


AUTO_PRECISION = (
    "bf16 (with channels-last) for the models it was measured to speed up, where the hardware "
    "has it"
)


def add_precision(
    parser: argparse.ArgumentParser, default: str, auto: str = AUTO_PRECISION
) -> None:
    """``--precision auto|fp32|bf16`` (:mod:`cnnlab.engine.performance`); ``auto`` says what
    auto means for the command."""
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default=default,
        help=f"bf16: autocast; fp32: PyTorch's default; auto: {auto}",
    )


def add_patience(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument(
        "--patience",
        type=non_negative_int,
        default=default,
        help="stop once this many epochs in a row bring no better validation score (best.pt "
        "keeps the best epoch either way); 0: train every epoch",
    )


def add_run_folder(parser: argparse.ArgumentParser, task: str) -> None:
    parser.add_argument(
        "--out",
        default="",
        help=f"run folder (default: runs/{task}/run, or run-2, run-3... beside earlier runs)",
    )


@contextlib.contextmanager
def data_change_reported() -> Iterator[list[str]]:
    """Around an evaluation or a resumed run: a :class:`~cnnlab.engine.runlog.DataChangedWarning`
    raised inside is printed at once as one ``cnnlab: warning:`` line on stderr and its text
    added to the yielded list; other warnings show as usual."""
    from cnnlab.engine.runlog import DataChangedWarning

    seen: list[str] = []
    with warnings.catch_warnings():  # restores the filters and showwarning on exit
        warnings.simplefilter("always", DataChangedWarning)
        show_others = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], *where: Any) -> None:
            if issubclass(category, DataChangedWarning):
                print(f"cnnlab: warning: {message}", file=sys.stderr)
                seen.append(str(message))
            else:
                show_others(message, category, *where)

        warnings.showwarning = show
        yield seen


def split_changed(ckpt: dict[str, Any], split: str, *tensors: Any) -> bool | None:
    """:func:`~cnnlab.engine.runlog.data_changed` for an eval command, its warning printed as
    one line: ``None`` for checkpoints without fingerprints."""
    from cnnlab.engine.runlog import data_changed

    with data_change_reported():
        return data_changed(ckpt, split, *tensors)
