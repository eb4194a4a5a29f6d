"""CLI commands over the indexes and flags: ``index``, ``neighbours``, ``flag``, ``unflag``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modescope.cli.common import JsonOpt, WorkspaceOpt, emit_json, progress_bar, warn
from modescope.core.catalog import FLAG_REASONS, Catalog
from modescope.core.discover import display_path
from modescope.core.errors import InputError
from modescope.core.workspace import DEFAULT_WORKSPACE, Workspace

if TYPE_CHECKING:
    from modescope.indexer.features import FeatureSpec


def index(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    source: Annotated[str, typer.Option(help="train, or generated:RUN for a run's samples.")]
    = "train",
    weights: Annotated[
        str | None,
        typer.Option(help="imagenet (Keras download + cache), random, or a path to a VGG16 "
                          "no-top weights file [default: the train index's, else imagenet]"),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for --weights random.")] = None,
    input_size: Annotated[
        int | None,
        typer.Option(help="VGG16 input size in px, a multiple of 32 [default: the train "
                          "index's, else the training size within 64..224]"),
    ] = None,
    batch: Annotated[int, typer.Option(help="Images per forward pass.")] = 32,
    engine: Annotated[
        str | None,
        typer.Option(help="fp32 (Keras) or int8 (OpenVINO, faster on CPUs with VNNI; "
                          "needs modescope[int8]) [default: the train index's, else fp32]"),
    ] = None,
    rebuild: Annotated[bool, typer.Option(help="Discard this source's index and re-extract.")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """Extract VGG16 descriptors of new images and update the FAISS indexes (resumable)."""
    from modescope.indexer.build import index_source

    ws = Workspace(workspace)
    spec = _resolve_spec(ws, source, weights, seed, input_size, engine)
    if batch < 1 or batch > 1024:
        raise InputError("--batch must be between 1 and 1024")
    warn(_untrained(spec.weights))
    with progress_bar("indexing", unit="img") as progress:
        report = index_source(ws, source, spec, batch=batch, rebuild=rebuild,
                              progress=progress)
    if as_json:
        emit_json(report.as_json())
    else:
        typer.echo(report.summary())


def _untrained(weights: str) -> str | None:
    from modescope.indexer.features import untrained_warning

    return untrained_warning(weights)


def _resolve_spec(ws: Workspace, source: str, weights: str | None, seed: int | None,
                  input_size: int | None, engine: str | None = None) -> FeatureSpec:
    """Options left out follow the train index, so every source shares one feature space."""
    from modescope.indexer.build import spec_from_meta
    from modescope.indexer.features import FeatureSpec, default_input_size
    from modescope.indexer.store import IndexStore

    base = None
    meta = IndexStore(ws, "train").read_meta() if ws.exists() else None
    if meta is not None:
        base = spec_from_meta(meta)
    if base is None:
        base = FeatureSpec(weights="imagenet",
                           input_size=default_input_size(ws.read_config().image_size))
    chosen = weights or base.weights
    if chosen not in ("imagenet", "random"):
        chosen = str(Path(chosen).expanduser().absolute())
    spec = FeatureSpec(
        weights=chosen,
        seed=seed if seed is not None else (base.seed if weights in (None, "random") else 0),
        input_size=input_size or base.input_size,
        pooling=dict(base.pooling),
        engine=engine or base.engine,
    )
    if source != "train" and meta is not None and spec.as_json() != meta["spec"]:
        raise InputError(
            "generated samples must be indexed with the train index's settings so their "
            "neighbours compare like with like; leave out --weights/--seed/--input-size/--engine")
    return spec


def neighbours(
    image: Annotated[str, typer.Argument(help="A training image id, or any image file.")],
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    layer: Annotated[str, typer.Option(help="block1 (colour, texture) or block5 (shape).")]
    = "block5",
    k: Annotated[int, typer.Option("--k", help="How many neighbours.")] = 24,
    source: Annotated[str, typer.Option(help="Index to search: train or generated:RUN.")]
    = "train",
    exclude_flagged: Annotated[
        bool, typer.Option(help="Leave flagged training images out of the results.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The k nearest images to IMAGE by cosine similarity of VGG16 descriptors."""
    from modescope.indexer.search import neighbours as find

    result = find(Workspace(workspace), image, layer=layer, k=k, source=source,
                  exclude_flagged=exclude_flagged)
    warn(result["warning"])
    if as_json:
        emit_json(result)
        return
    typer.echo(f"{len(result['neighbours'])} nearest to {image} on {layer} "
               f"(weights {result['weights']}):")
    for n in result["neighbours"]:
        label = f" [{n['label']}]" if n["label"] else ""
        typer.echo(f"  {n['similarity']:.4f}  #{n['id']}{label}  {n['path'] or ''}")


def flag(
    ids: Annotated[list[int] | None, typer.Argument(help="Training image ids.")] = None,
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    paths: Annotated[Path | None, typer.Option(
        help="A text file of ingested images' paths, one per line (relative ones from the "
             "file's folder), to flag as well.")] = None,
    reason: Annotated[str, typer.Option(help=f"One of: {', '.join(FLAG_REASONS)}.")] = "noisy",
    note: Annotated[str | None, typer.Option(help="Free text kept with the flag.")] = None,
) -> None:
    """Set training images aside: flagged images are left out of retraining."""
    if reason not in FLAG_REASONS:
        raise InputError(f"--reason {reason!r}: use one of {', '.join(FLAG_REASONS)}")
    if not ids and paths is None:
        raise InputError("name the images to flag: their ids, or --paths FILE")
    ws = Workspace(workspace)
    ws.read_config()
    catalog = Catalog.open(ws.catalog_path)
    try:
        wanted = list(ids or []) + (_ids_of_paths(catalog, paths) if paths else [])
        unknown = catalog.flag(wanted, reason, note)
    finally:
        catalog.close()
    if unknown:
        raise InputError(f"not training images (nothing flagged for them): "
                         f"{', '.join(map(str, unknown))}")
    typer.echo(f"flagged {len(wanted)} image(s) as {reason}")


def _ids_of_paths(catalog: Catalog, listing: Path) -> list[int]:
    """The ids of the ingested images a file lists; refuses (flagging nothing) when a line
    names no ingested image."""
    try:
        lines = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--paths {listing}: cannot read it ({exc})") from None
    ids, missing = [], []
    for line in filter(None, lines):
        # the catalog's key, as ingest wrote it and `neighbours FILE` looks it up: absolute,
        # not resolved (a symlinked data folder keeps the path ingest read)
        found = catalog.ok_id_for_path(display_path((listing.parent / line).absolute()))
        (missing.append(line) if found is None else ids.append(found))
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InputError(f"--paths {listing}: {len(missing)} line(s) name no ingested image "
                         f"({', '.join(missing[:5])}{more}); nothing was flagged. Give the paths "
                         "ingest read (see `modescope status`)")
    return ids


def unflag(
    ids: Annotated[list[int], typer.Argument(help="Training image ids.")],
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
) -> None:
    """Take flags off training images."""
    ws = Workspace(workspace)
    ws.read_config()
    catalog = Catalog.open(ws.catalog_path)
    try:
        n = catalog.unflag(ids)
    finally:
        catalog.close()
    typer.echo(f"unflagged {n} image(s)")


def register(cli: typer.Typer) -> None:
    """Add this module's commands to the ``modescope`` command."""
    cli.command()(index)
    cli.command()(neighbours)
    cli.command()(flag)
    cli.command()(unflag)
