"""The preprocessing specification: exactly what was done to every scan, with its hash.

A :class:`PreprocessingSpec` lists the steps, every numeric parameter, the template, the
target grid and the versions of the libraries that computed the numbers. Its canonical
JSON (sorted keys, no spaces) is hashed with sha256; the file ``preprocessing_spec.json``
next to every output holds the spec and the hash. Training runs and predictions record the
hash, and :func:`check_spec_compatible` refuses to mix outputs of different specs. The
parameter defaults and the library list are :mod:`brainage.preprocessing.spec_params`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from brainage.errors import InputError, NotFoundError
from brainage.io import parse_json_file, write_json
from brainage.preprocessing.grids import Grid, get_grid
from brainage.preprocessing.spec_params import DEFAULT_PARAMS, library_versions

#: File name of the spec next to preprocessed outputs (cache, derivatives, run folders).
SPEC_FILE = "preprocessing_spec.json"
#: The template every grid lives in (nilearn's bundled ICBM 2009a symmetric MNI152).
TEMPLATE = "MNI152NLin2009aSym"
SKULLSTRIPS = ("refined", "template", "deepbet")
REGISTRATIONS = ("affine", "syn")
NORMALISATIONS = ("zscore", "minmax", "none")


@dataclass(frozen=True)
class PreprocessingSpec:
    """What `brainage prepare` does to a scan (build it with :meth:`create`).

    Attributes:
        grid: Target grid in MNI world coordinates.
        n4: Run N4 bias-field correction before registration.
        skullstrip: ``"refined"`` (the template brain mask grown into brain-bright voxels
            on the grid; the default), ``"template"`` (the template mask carried through the
            registration) or ``"deepbet"`` (neural network in native space).
        registration: ``"affine"`` or ``"syn"`` (affine followed by nonlinear SyN).
        normalisation: ``"zscore"`` (brain voxels mean 0, SD 1; background 0), ``"minmax"``
            (z-score, then brain voxels scaled to [0, 1]; background 0) or ``"none"``.
        template: Template identifier (space entity of the BIDS outputs).
        params: Every numeric parameter (see ``DEFAULT_PARAMS``).
        libraries: Library versions that produced the outputs.
        tissues: Also write GM, WM and CSF probability maps (+ the log-Jacobian with
            ``registration="syn"``); see :mod:`brainage.preprocessing.tissues`.
    """

    grid: Grid
    n4: bool = True
    skullstrip: str = "template"
    registration: str = "affine"
    normalisation: str = "zscore"
    template: str = TEMPLATE
    params: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    libraries: Mapping[str, str] = field(default_factory=dict)
    tissues: bool = False

    @classmethod
    def create(
        cls,
        grid: str | Grid = "tsan",
        *,
        n4: bool = True,
        skullstrip: str = "refined",
        nonlinear: bool = False,
        normalisation: str | None = None,
        tissues: bool = True,
        **params: Any,
    ) -> PreprocessingSpec:
        """A validated spec with the installed library versions.

        Args:
            grid: Preset name, custom grid string or :class:`Grid`.
            n4: Bias-field correction on or off.
            skullstrip: ``"refined"``, ``"template"`` or ``"deepbet"``.
            nonlinear: Add SyN after the affine registration.
            tissues: Also write tissue probability maps (the default: the default model
                reads them).
            normalisation: Override the grid's default normalisation.
            **params: Overrides of ``DEFAULT_PARAMS`` entries.

        Raises:
            BrainAgeError: an unknown option value or parameter name.
        """
        g = get_grid(grid)
        norm = normalisation or g.normalisation
        _check_choice("skullstrip", skullstrip, SKULLSTRIPS)
        _check_choice("normalisation", norm, NORMALISATIONS)
        unknown = sorted(set(params) - set(DEFAULT_PARAMS))
        if unknown:
            raise InputError(
                f"unknown preprocessing parameter(s) {unknown}; expected names from "
                f"{sorted(DEFAULT_PARAMS)}. Fix: check the spelling."
            )
        return cls(
            grid=g, n4=bool(n4), skullstrip=skullstrip,
            registration="syn" if nonlinear else "affine", normalisation=norm,
            params={**DEFAULT_PARAMS, **params}, libraries=library_versions(skullstrip),
            tissues=bool(tissues),
        )

    @property
    def steps(self) -> list[str]:
        """The steps in order, with their method."""
        steps = ["conform"] + (["n4"] if self.n4 else [])
        steps += [f"register:{self.registration}", f"skullstrip:{self.skullstrip}"]
        steps += [f"resample:{self.params['interpolation']}", f"normalise:{self.normalisation}"]
        return steps + (["segment:gm-wm-csf"] if self.tissues else [])

    @property
    def tissue_channels(self) -> tuple[str, ...]:
        """Channels of the cached tissue array (empty without tissue maps)."""
        from brainage.preprocessing.tissues import LOGJAC, TISSUES

        if not self.tissues:
            return ()
        return TISSUES + ((LOGJAC,) if self.registration == "syn" else ())

    def recipe(self) -> dict[str, Any]:
        """Everything but the library versions, JSON-ready (``tissues`` only when on, so
        specs written before tissue maps existed keep their hash)."""
        out = {
            "steps": self.steps, "template": self.template, "grid": self.grid.to_dict(),
            "n4": self.n4, "skullstrip": self.skullstrip, "registration": self.registration,
            "normalisation": self.normalisation, "params": dict(sorted(self.params.items())),
        }
        return {**out, "tissues": True} if self.tissues else out

    def to_dict(self) -> dict[str, Any]:
        """The full spec, JSON-ready (recipe plus library versions)."""
        return {**self.recipe(), "libraries": dict(sorted(self.libraries.items()))}

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON of the full spec (hex, 64 characters)."""
        return _sha256(self.to_dict())

    @property
    def recipe_hash(self) -> str:
        """sha256 of the recipe alone (same steps and numbers, any library versions)."""
        return _sha256(self.recipe())

    @property
    def short_hash(self) -> str:
        """First 12 characters of :attr:`hash`, for messages and file names."""
        return self.hash[:12]

    def __hash__(self) -> int:
        return hash(self.hash)

    def with_current_libraries(self) -> PreprocessingSpec:
        """The same recipe with the versions installed here."""
        return replace(self, libraries=library_versions(self.skullstrip))

    def save(self, path: str | Path) -> Path:
        """Write ``{"spec": ..., "hash": ..., "recipe_hash": ...}``; a folder gets SPEC_FILE."""
        p = Path(path)
        p = p / SPEC_FILE if p.is_dir() else p
        write_json(p, {"spec": self.to_dict(), "hash": self.hash, "recipe_hash": self.recipe_hash})
        return p

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PreprocessingSpec:
        """Inverse of :meth:`to_dict` (unknown parameters are kept, so old specs load)."""
        try:
            return cls(
                grid=Grid.from_dict(d["grid"]), n4=bool(d["n4"]), skullstrip=str(d["skullstrip"]),
                registration=str(d["registration"]), normalisation=str(d["normalisation"]),
                template=str(d["template"]), params=dict(d["params"]),
                libraries={str(k): str(v) for k, v in d.get("libraries", {}).items()},
                tissues=bool(d.get("tissues", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"not a brainage preprocessing spec (missing or bad field {exc}). "
                f"Fix: point to a {SPEC_FILE} written by `brainage prepare`."
            ) from exc

    @classmethod
    def load(cls, path: str | Path) -> PreprocessingSpec:
        """Read a spec file (or a folder holding SPEC_FILE) and verify its stored hash."""
        p = Path(path)
        p = p / SPEC_FILE if p.is_dir() else p
        if not p.is_file():
            raise NotFoundError(
                f"{p}: preprocessing spec not found. Fix: run `brainage prepare` into this "
                "folder first, or give the path of its preprocessing_spec.json."
            )
        raw = parse_json_file(p, "restore the file")
        if not isinstance(raw, dict):
            raise InputError(f"{p}: not a brainage preprocessing spec (expected a JSON object). "
                             "Fix: restore the file, or prepare again.")
        try:
            spec = cls.from_dict(raw.get("spec", raw))
        except InputError as exc:  # from_dict's message does not know the file
            raise InputError(f"{p}: {exc}") from exc
        stored = raw.get("hash")
        if stored is not None and stored != spec.hash:
            raise InputError(
                f"{p}: stored hash {str(stored)[:12]} does not match the spec's content "
                f"({spec.short_hash}); the file was edited. Fix: restore it or prepare again."
            )
        return spec


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise InputError(
            f"{name} {value!r} is not valid; expected one of {', '.join(valid)}. "
            f"Fix: pass --{name} with one of those."
        )


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, ASCII: the same object always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _sha256(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode("ascii")).hexdigest()


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON-like values differ, with both values."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out = []
        for k in sorted(set(a) | set(b)):
            key = f"{prefix}.{k}" if prefix else str(k)
            out += _diff(a.get(k, "<absent>"), b.get(k, "<absent>"), key)
        return out
    return [] if a == b else [f"{prefix}: {a!r} vs {b!r}"]


def recipe_differences(expected: PreprocessingSpec, actual: PreprocessingSpec) -> list[str]:
    """Where the recipes of two specs differ (library versions aside): ``"path: a vs b"``."""
    return _diff(expected.recipe(), actual.recipe())


def check_spec_compatible(
    expected: PreprocessingSpec,
    actual: PreprocessingSpec,
    *,
    allow_library_drift: bool = False,
    what: tuple[str, str] = ("expected", "actual"),
) -> None:
    """Refuse to mix outputs of different preprocessing specs.

    Args:
        expected: The spec a consumer was built with (a model's training data, a cache).
        actual: The spec of the data offered to it.
        allow_library_drift: Same recipe but other library versions only warns.
        what: Names of the two sides for the message, e.g. ``("model", "input")``.

    Raises:
        BrainAgeError: the recipes differ, or only the library versions differ and
            `allow_library_drift` is false. The message lists every difference.
    """
    if expected.hash == actual.hash:
        return
    diffs = _diff(expected.recipe(), actual.recipe())
    names = f"{what[0]} {expected.short_hash} vs {what[1]} {actual.short_hash}"
    if diffs:
        raise InputError(
            f"preprocessing specs differ ({names}): " + "; ".join(diffs)
            + f". Fix: prepare the scans again with the spec of the {what[0]} "
            f"({expected.short_hash}): `brainage prepare SOURCE OUT --spec "
            "preprocessing_spec.json`."
        )
    drift = "; ".join(_diff(dict(expected.libraries), dict(actual.libraries)))
    message = f"same preprocessing recipe but other library versions ({names}): {drift}"
    if not allow_library_drift:
        raise InputError(
            message + ". Fix: install the same versions, or accept the drift explicitly "
            "(allow_library_drift=True / --allow-library-drift)."
        )
    warnings.warn(message, stacklevel=2)
