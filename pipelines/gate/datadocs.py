"""Great Expectations' Data Docs: built quarter by quarter, and readable with no network (an
auditor on an intranet).

The build (`build_data_docs`, and `render` for the pages of one validation as it is stored)
renders one quarter's validation pages, their suites' pages and the index: an earlier quarter's
pages are there already, unchanged, so the work does not grow with the history. What the index
shows of each stored result is read from a file kept beside the results (`gx_patches`, the index
patch), not from every result again.

GE's page templates load Bootstrap, jQuery, bootstrap-table, Font Awesome, the datepicker and
Vega from public CDNs, its logo from the internet, and end with a newsletter form. Here the same
templates are rendered through a loader that rewrites them as they are read:

- every CDN address becomes the same file under `<out>/data_docs/static/vendor/`, copied from
  `datadocs_static/` in this package. Those files come from the npm packages named, at the exact
  versions, in `datadocs_static/vendor.json`, which also pins each package's integrity and each
  file's SHA-256 (`python -m pipelines.gate.datadocs vendor` refreshes them from the registry);
- the logo is GE's own copy in `static/images/`; the newsletter footer, the call-to-action
  footer and the link to GE's site are gone;
- `integrity`/`crossorigin` attributes are dropped: a page opened from disk has no origin, and a
  `crossorigin` script from `file://` is refused by the browser.

GE's views are subclassed only to put that loader in front (`OfflinePageView`,
`OfflineIndexPageView`); `gx_store.site_config` names them in the site's configuration. Nothing
is fetched at run time.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import traceback
from functools import cache
from pathlib import Path

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BaseLoader, ChoiceLoader, Environment, Undefined

from pipelines.core import idnumbers
from pipelines.core.layout import Outputs
from pipelines.core.quarters import Quarter
from pipelines.core.resources import DATADOCS_MANIFEST, DATADOCS_STATIC_DIR
from pipelines.gate import (
    # GE renders a stored suite or result by finding each expectation's class by its name: the
    # custom ones are registered when their module is imported, which a process that only
    # builds the Data Docs (the accounting step on its own) would otherwise not have done
    custom_expectations,  # noqa: F401
    gx_patches,
    gx_store,
)

logger = logging.getLogger(__name__)

STATIC = DATADOCS_STATIC_DIR
MANIFEST = DATADOCS_MANIFEST
VENDOR = "vendor"  # as in Outputs.data_docs_vendor (the tests follow every link to its file)
_STAMP = ".vendor.json"  # the manifest as copied last, in <out>/data_docs/static/vendor/

# what else the templates say that does not belong offline: (template, text, replacement)
_EDITS: tuple[tuple[str, str, str], ...] = (
    # the logo from GE's S3 bucket; its local copy is in static/images/ (the index page sets no
    # folder for it, so it gets its own)
    (
        "top_navbar.j2",
        '{% set static_images_dir = "https://great-expectations-web-assets.s3.us-east-2'
        '.amazonaws.com/" -%}',
        '{% if static_images_dir is not defined %}{% set static_images_dir = "./static/images/" '
        "%}{% endif %}",
    ),
    ("top_navbar.j2", " | add_data_context_id_to_url", ""),
    # GE's favicon of a validation page points one folder short of the site's static/
    (
        "favicon.j2",
        '((expectation_suite_name_dot_count + 3) * "../")',
        '((expectation_suite_name_dot_count + 4) * "../")',
    ),
    (
        "data_docs_default_styles.css",
        "url('https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png')",
        "url('{{ safetynet_static(renderer_type, expectation_suite_name) }}images/logo-long.png')",
    ),
    (
        "ge_info.j2",
        '<a href="https://greatexpectations.io">Great Expectations</a>',
        "Great Expectations",
    ),
)
# templates rendered as nothing: GE's newsletter form and its call-to-action footer
_EMPTY = frozenset({"cloud-footer.j2", "cta_footer.j2"})
_SRI = re.compile(r'\s+integrity="[^"]*"\s+crossorigin="anonymous"')


@cache
def manifest() -> dict:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def static_root(renderer_type, expectation_suite_name) -> str:
    """The relative path from a page to the site's `static/` folder. Validation pages lie at
    `validations/<suite as folders>/<run name>/<run time>/`, suite pages at
    `expectations/<suite as folders>.html`, the index at the top (GE's own `top_navbar.j2`
    computes its home link the same way)."""
    kind = "" if isinstance(renderer_type, Undefined) else str(renderer_type or "")
    dots = (
        0
        if isinstance(expectation_suite_name, Undefined) or not expectation_suite_name
        else str(expectation_suite_name).count(".")
    )
    if "ValidationResults" in kind or "ProfilingResults" in kind:
        return "../" * (dots + 4) + "static/"
    if "ExpectationSuite" in kind:
        return "../" * (dots + 1) + "static/"
    return "./static/"


def offline(name: str, source: str) -> str:
    """GE's template `name` with nothing left that needs the network."""
    if name in _EMPTY:
        return ""
    urls = manifest()["urls"]
    for url, local in urls.items():
        source = source.replace(
            url,
            f"{{{{ safetynet_static(renderer_type, expectation_suite_name) }}}}{VENDOR}/{local}",
        )
    source = _SRI.sub("", source)
    for template, old, new in _EDITS:
        if template == name:
            if old not in source:  # GE changed its template: the pin in pyproject.toml moved
                raise RuntimeError(f"Data Docs: {name} no longer contains {old[:60]!r}")
            source = source.replace(old, new)
    return source


class _OfflineLoader(BaseLoader):
    """GE's own loaders, each template rewritten by `offline` as it is read."""

    def __init__(self, inner: BaseLoader):
        self.inner = inner

    def get_source(self, environment, template):
        source, filename, uptodate = self.inner.get_source(environment, template)
        return offline(template, source), filename, uptodate

    def list_templates(self):
        return self.inner.list_templates()


def _offline_env(view) -> None:
    env: Environment = view.env
    env.loader = _OfflineLoader(env.loader or ChoiceLoader([]))
    env.globals["safetynet_static"] = static_root


class OfflinePageView(DefaultJinjaPageView):
    """GE's page view (suite and validation pages), rendered for reading offline."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        _offline_env(self)


class OfflineIndexPageView(DefaultJinjaIndexPageView):
    """GE's index page view, rendered for reading offline."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        _offline_env(self)


def install_static(target: Path) -> Path:
    """Copy the vendored files into `target` (`Outputs.data_docs_vendor`) unless the same
    manifest was copied there last; returns it."""
    target = Path(target)
    stamp = target / _STAMP
    wanted = MANIFEST.read_bytes()
    if stamp.is_file() and stamp.read_bytes() == wanted:
        return target
    for local in manifest()["sha256"]:
        dest = target / local
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STATIC / local, dest)
    stamp.write_bytes(wanted)  # last: a copy cut short is redone next time
    return target


# --- the build --------------------------------------------------------------------------------


def _page_folder(pages: Path, key) -> Path:
    """Where GE's site puts a validation result's page: `<suite as folders>/<run name>/`."""
    suite = key.expectation_suite_identifier.name
    return pages.joinpath(*suite.split("."), key.run_id.run_name)


def render(gx_context, out: Path, resource_identifiers: list | None = None) -> None:
    """Render the pages of `resource_identifiers` (suite and validation result keys; all pages
    without them) and the index, with the index's patch (`gx_patches.patched`), and copy the
    vendored files beside them. The caller holds the folder's lock (`gx_store.one_writer`)."""
    with gx_patches.patched(index_of=gx_context, index_links=Outputs(out).gx_index_links):
        gx_context.build_data_docs(
            site_names=[gx_store.SITE], resource_identifiers=resource_identifiers
        )
    install_static(Outputs(out).data_docs_vendor)


def build_data_docs(
    out: Path,
    quarter: Quarter | str | None = None,
    *,
    raise_errors: bool = False,
    gx_context: gx_store.RunContext | None = None,
) -> Path | None:
    """Build the Data Docs site; returns `<out>/data_docs/index.html` (None, logged, if GE could
    not build it, unless `raise_errors`). With `quarter`, only that quarter's validation pages
    and their suites' pages are rendered, and the index (which lists every quarter) rebuilt: the
    earlier quarters' pages are there already, unchanged, so the work does not grow with the
    history; a stored result of another quarter whose page is missing is rendered too. Without
    it, or when the site has no index yet, the whole site is rendered. `gx_context`: the run's
    (`gx_store.RunContext`); without it one is opened here."""
    out = Path(out).resolve()
    try:
        with gx_store.one_writer(out):
            ctx = gx_store.context_of(out, gx_context)
            if quarter is None or not Outputs(out).data_docs_index.is_file():
                wanted = None
            else:
                prefix = f"{Quarter.parse(str(quarter))}."
                pages = Outputs(out).data_docs_validations
                keys = [
                    k
                    for k in ctx.validation_results_store.list_keys()
                    if k.run_id.run_name
                    and (
                        k.run_id.run_name.startswith(prefix)
                        # a result whose page is missing (its quarter's build failed): so the
                        # index, which lists every result, links nothing that is not there
                        or not _page_folder(pages, k).is_dir()
                    )
                ]
                suites = {
                    k.expectation_suite_identifier.name: k.expectation_suite_identifier
                    for k in keys
                }
                wanted = [*suites.values(), *keys]
            render(ctx, out, wanted)
    except Exception as e:
        if raise_errors:
            raise
        logger.error(
            "Great Expectations Data Docs for %s not built: %s: %s\n%s",
            out,
            type(e).__name__,
            idnumbers.scrub(str(e)),
            "".join(traceback.format_tb(e.__traceback__)),
        )
        return None
    return Outputs(out).data_docs_index


# --- refreshing the vendored files from the npm registry (a developer's step, not a run's) ----


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _integrity(tarball: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()


def vendor(update: bool = False) -> None:
    """Fetch each package of the manifest with `npm pack` at its pinned version, check its
    integrity against the manifest (with `update`: record it instead), and copy the files it
    lists into `datadocs_static/`, recording their SHA-256."""
    data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    sums: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for package in data["packages"]:
            spec = f"{package['name']}@{package['version']}"
            out = subprocess.run(
                ["npm", "pack", spec, "--json", "--ignore-scripts", "--pack-destination", tmp],
                check=True,
                capture_output=True,
                text=True,
            )
            tarball = Path(tmp) / json.loads(out.stdout)[0]["filename"]
            got = _integrity(tarball)
            if update:
                package["integrity"] = got
            elif got != package["integrity"]:
                sys.exit(f"{spec}: integrity {got} is not the pinned {package['integrity']}")
            with tarfile.open(tarball) as tar:
                for inner, local in package["files"].items():
                    member = tar.extractfile(f"package/{inner}")
                    if member is None:
                        sys.exit(f"{spec}: {inner} is not a file in the package")
                    dest = STATIC / local
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(member.read())
                    sums[local] = _sha256(dest)
    data["sha256"] = dict(sorted(sums.items()))
    MANIFEST.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(sums)} files from {len(data['packages'])} packages in {STATIC}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipelines.gate.datadocs")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("vendor", help="refresh datadocs_static/ from the npm registry")
    v.add_argument("--update", action="store_true", help="record new integrities (new versions)")
    args = parser.parse_args(argv)
    if args.command == "vendor":
        vendor(update=args.update)


if __name__ == "__main__":
    main()
