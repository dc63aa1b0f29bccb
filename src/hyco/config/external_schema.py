"""Typed settings of `data.external`: trajectories made elsewhere (The Well, PDEBench), imported or read in place
instead of simulated (`hyco.data.external`). Part of the schema (`hyco.config.schema`), declared with `setting`
like every key, so the configuration reference documents them."""

from __future__ import annotations

from dataclasses import dataclass

from hyco.config.fields import check_settings, section, setting
from hyco.errors import require

EXTERNAL_FORMATS = ("auto", "the_well", "pdebench")


@dataclass
class ExternalSplits:
    """The files of a split, when it has its own (The Well keeps data/train, data/valid, data/test); empty:
    `path`. A folder stands for all its HDF5 files, in name order."""

    train: str = setting("", "The file (or folder of files) the training trajectories come from; empty: "
                             "`data.external.path`.")
    val: str = setting("", "The file (or folder of files) the validation trajectories come from; empty: "
                           "`data.external.path`.")
    test: str = setting("", "The file (or folder of files) the test trajectories come from; empty: "
                            "`data.external.path`.")
    valid: str = setting("", "The Well's name for `val` (its folder `data/valid`): the same setting.")

    def __post_init__(self) -> None:
        require(not (self.val and self.valid and self.val != self.valid), "data.external.splits.valid",
                f"the same as data.external.splits.val ({self.val}) or empty (two names of one split)", self.valid)
        self.val = self.val or self.valid


@dataclass
class ExternalDataConfig:
    """Trajectories made elsewhere (The Well or PDEBench HDF5 layouts), imported instead of simulated.

    See `hyco.data.external`: the file's fields are mapped onto the physics model's channels; its grid, dt and
    bounds are used where it has them. `path: ""` (the default) simulates the data as usual."""

    path: str = setting("", "An HDF5 file (or a folder of them) of The Well or PDEBench that every split takes its "
                            "trajectories from, in the order train, val, test; empty: the data are simulated.")
    format: str = setting("auto", "The file's layout; `auto` guesses it from the file.", choices=EXTERNAL_FORMATS)
    fields: dict[str, str] = setting(
        {}, "File field (or component) -> physics field (or channel), e.g. `data.external.fields.Vx='velocity[0]'`; "
            "a file field mapped onto a coefficient of the model (`data.external.fields.kappa=diffusivity`) is its "
            "true value. Empty: a physics field takes the file field of its own name, and a file of one field fills "
            "the model's channels in order.", allowed="file field: physics field (or coefficient) pairs")
    splits: ExternalSplits = section(ExternalSplits, "A file or folder of its own per split (`train`, `val` or "
                                                     "`valid`, `test`).")
    start_frame: int = setting(0, "The first frame of each trajectory that is taken.", at_least=0)
    frame_stride: int = setting(1, "Every k-th frame from `start_frame` on; the time step becomes k times the "
                                   "file's (and `physics.substeps` grows with it where the scheme needs it).",
                                at_least=1)
    known_truth: list[str] = setting(
        [], "Learned coefficients whose `physics.<name>.truth` is the true value of the file's data; the others "
            "are reported as unknown (known ones, `learn: false`, always count as true).")
    in_place: bool = setting(False, "Read the trajectories from the files where they lie, with the same checks, "
                                    "instead of importing a copy into `data_dir`; a file on a network file system "
                                    "is imported all the same (reading it in place would be slow).")

    def __post_init__(self) -> None:
        check_settings(self, "data.external.")
        for source, target in self.fields.items():
            require(bool(source) and bool(target), "data.external.fields",
                    "file field: physics field (or coefficient) pairs", f"{source}: {target}")

    @property
    def enabled(self) -> bool:
        return bool(self.path or self.splits.train or self.splits.val or self.splits.test)
