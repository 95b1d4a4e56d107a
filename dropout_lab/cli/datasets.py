"""``dropout-lab datasets list|fetch``: what data sets exist, which are here, download one."""

from __future__ import annotations

from typing import TypedDict

import typer
from rich.table import Table

from dropout_lab.cli.app import current, guard
from dropout_lab.data import files, mnist, registry
from dropout_lab.errors import DataError
from dropout_lab.safe_text import markup

datasets_app = typer.Typer(
    help="List the data sets (size, whether they are available locally) and download them.",
    no_args_is_help=True,
)

# Where the data sets that are not downloaded come from (for the table).
_NOT_DOWNLOADED = {
    "digits": ("1797 in all", "bundled with scikit-learn"),
    "synthetic": ("you choose", "generated from dataset.seed"),
    "idx": ("yours", "set dataset.path (a folder)"),
    "npz": ("yours", "set dataset.path (a .npz file)"),
}


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")


class _RowKeys(TypedDict):
    name: str
    description: str
    train: int | None
    test: int | None
    files: list[str]
    download_mb: float | None
    available: bool
    where: str


class DatasetRow(_RowKeys, total=False):
    """One data set in ``datasets list --json`` (``sizes``: only for those not downloaded)."""

    sizes: str


def _rows() -> list[DatasetRow]:
    rows = []
    for name in registry.names():
        spec = registry.get_spec(name)
        # keys in the order of the JSON output
        row: DatasetRow
        if name in mnist.FAMILY:
            fam = mnist.FAMILY[name]
            available, where = mnist.status(name)
            row = {"name": name, "description": spec.description,
                   "train": fam.n_train, "test": fam.n_test,
                   "files": [f.filename for f in fam.files],
                   "download_mb": round(fam.download_bytes / 1e6, 1),
                   "available": available, "where": where}
        else:
            sizes, where = _NOT_DOWNLOADED.get(name, ("?", "?"))
            row = {"name": name, "description": spec.description,
                   "train": None, "test": None, "sizes": sizes, "files": [], "download_mb": None,
                   "available": not spec.needs_files, "where": where}
        rows.append(row)
    return rows


@datasets_app.command("list")
@guard
def list_(
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
) -> None:
    """Show every data set: size, files, and whether it is available locally (and where)."""
    ui = current()
    rows = _rows()
    if json_out:
        ui.print_json({"cache": str(files.cache_root()), "datasets": rows})
        return
    table = Table(title="data sets")
    table.add_column("name", no_wrap=True)
    table.add_column("train / test", no_wrap=True)
    table.add_column("download", no_wrap=True)
    table.add_column("available locally", overflow="fold")
    table.add_column("description", ratio=1)
    for r in rows:
        sizes = f"{r['train']:,} / {r['test']:,}" if r["train"] else r.get("sizes", "")
        download = f"{r['download_mb']} MB" if r["files"] else "-"
        state = "[green]yes[/]" if r["available"] else "[yellow]no[/]"
        table.add_row(r["name"], sizes, download, f"{state}: {markup(r['where'])}",
                      markup(r["description"]))
    if ui.out.is_terminal:  # the description and the place wrap inside the terminal's width
        ui.out.print(table, soft_wrap=False)
    else:  # a pipe: every row on one line
        ui.print_whole(table)
    ui.out.print(f"download cache: {markup(str(files.cache_root()))} "
                 f"(search order: dataset.path, ${files.DATA_ENV}/NAME, cache)", highlight=False,
                 soft_wrap=not ui.out.is_terminal)


@datasets_app.command("fetch")
@guard
def fetch(
    name: str = typer.Argument(..., help="data set to download: " + ", ".join(mnist.FAMILY)),
    force: bool = typer.Option(False, "--force", help="download again even if present"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
) -> None:
    """Download NAME from its public mirrors into the cache, checking every file's SHA-256."""
    ui = current()
    registry.get_spec(name)  # an unknown name: ConfigError with a suggestion
    if name not in mnist.FAMILY:
        _, where = _NOT_DOWNLOADED.get(name, ("", "not downloadable"))
        raise DataError(f"{name!r} has nothing to download ({where}); downloadable: "
                        f"{', '.join(mnist.FAMILY)}")

    folder = mnist.fetch(name, force=force, report=ui.report)
    if json_out:
        ui.print_json({"name": name, "folder": str(folder),
                       "files": len(mnist.FAMILY[name].files)})
        return
    ui.out.print(f"{name}: {len(mnist.FAMILY[name].files)} files verified in "
              f"[bold]{markup(str(folder))}[/]", highlight=False)
