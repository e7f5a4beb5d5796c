"""The --scale rule: how many of each entity a demo at scale s has (see the package docstring)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from builders.demo_data import names


def scaled(real: int, scale: float, floor: int) -> int:
    """round(real * scale), at least `floor` (or `real` if smaller), at most `real`."""
    return max(min(floor, real), min(real, int(math.floor(real * scale + 0.5))))


@dataclass(frozen=True)
class Scale:
    s: float

    # signatures
    @property
    def secact(self) -> int:
        return scaled(len(names.SECACT), self.s, 40)

    @property
    def lincytosig(self) -> int:
        return scaled(len(names.LINCYTOSIG), self.s, 12)

    # perturbation
    @property
    def cytokines(self) -> int:
        return scaled(len(names.CYTOKINES), self.s, 8)

    @property
    def drugs(self) -> int:
        return scaled(len(names.DRUGS), self.s, 5)

    @property
    def dose_drugs(self) -> int:
        return min(self.drugs, scaled(25, self.s, 3))

    @property
    def cell_lines(self) -> int:
        return scaled(len(names.CELL_LINES), self.s, 10)  # the first 10 span 10 cancer types

    # spatial
    def spatial_files(self, technology: str) -> int:
        real = names.TECHNOLOGIES[technology][0]
        return scaled(real, self.s, 6 if technology == "Visium" else 1)

    @property
    def coordinate_points(self) -> int:
        return scaled(10_000, self.s, 200)

    # atlas
    @property
    def cima_cell_types(self) -> int:
        return scaled(len(names.CIMA_CELL_TYPES), self.s, 6)

    @property
    def cima_samples(self) -> int:
        return scaled(421, self.s, 40)  # donors with age and activity (summary_stats cima.n_samples)

    @property
    def cima_metabolites(self) -> int:
        return scaled(len(names.METABOLITES), self.s, 20)

    @property
    def cima_eqtl_cell_types(self) -> int:
        return scaled(len(names.CIMA_EQTL_CELL_TYPES), self.s, 6)

    @property
    def cima_eqtl_genes(self) -> int:
        return scaled(len(names.EQTL_GENES), self.s, 100)

    @property
    def cima_eqtl_top(self) -> int:
        return scaled(5_000, self.s, 100)  # cima_eqtl_top.json: ~5K records (its catalogue entry)

    @property
    def inflammation_cell_types(self) -> int:
        return scaled(len(names.INFLAMMATION_CELL_TYPES), self.s, 8)

    @property
    def organs(self) -> int:
        return scaled(len(names.SCATLAS_ORGANS), self.s, 6)

    @property
    def cancer_cell_types(self) -> int:
        return scaled(len(names.SCATLAS_CANCER_CELL_TYPES), self.s, 6)

    @property
    def scatlas_cancer_types(self) -> int:
        return scaled(len(names.SCATLAS_CANCER_TYPES), self.s, 6)  # the floor keeps six adjacent-tissue types

    @property
    def scatlas_subclusters(self) -> int:
        return scaled(len(names.SCATLAS_CANCER_SUBCLUSTERS), self.s, 20)  # every classified category

    @property
    def scatlas_donors_per_cancer_type(self) -> int:
        return scaled(16, self.s, 6)  # 464 cancer donors / 29 cancer types

    @property
    def diseases(self) -> int:
        return scaled(len(names.DISEASES), self.s, 6)


@dataclass(frozen=True)
class Signatures:
    """The signature axis of a domain: names, signature types, and lookups."""

    names: tuple[str, ...]
    types: np.ndarray  # index into type_names, one per signature
    type_names: tuple[str, ...]
    lookup: dict = field(default_factory=dict, compare=False, repr=False)  # (type, name) -> index

    @classmethod
    def build(cls, scale: Scale, lincytosig: bool = False) -> "Signatures":
        groups = [("CytoSig", names.CYTOSIG), ("SecAct", names.SECACT[:scale.secact])]
        if lincytosig:
            groups.append(("LinCytoSig", names.LINCYTOSIG[:scale.lincytosig]))
        all_names = tuple(n for _, group in groups for n in group)
        types = np.concatenate([np.full(len(g), i, dtype=np.int32) for i, (_, g) in enumerate(groups)])
        type_names = tuple(t for t, _ in groups)
        lookup = {(type_names[t], n): i for i, (t, n) in enumerate(zip(types.tolist(), all_names))}
        return cls(all_names, types, type_names, lookup)

    def __len__(self) -> int:
        return len(self.names)

    def of_type(self, type_name: str) -> np.ndarray:
        return np.flatnonzero(self.types == self.type_names.index(type_name))

    def find(self, type_name: str, name: str) -> int | None:
        """Index of signature `name` of the given type, or None when absent at this scale."""
        return self.lookup.get((type_name, name))

    def indices(self, type_name: str, wanted) -> list[int]:
        found = (self.find(type_name, n) for n in wanted)
        return [i for i in found if i is not None]
