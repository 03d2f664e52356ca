"""What the tests share besides fixtures: real players (`players`), test instruments and tones (`helpers`),
format facts and schemas (`data/`), and where the repository's example sounds are."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOUNDS = REPO / "instruments" / "sounds"
DATA = Path(__file__).resolve().parent / "data"


def copy_example_sounds(folder: Path) -> None:
    """The example sounds (cat_meow.flac, flute.wav) copied into `folder`, for specs that tests build."""
    import shutil
    for name in ("cat_meow.flac", "flute.wav"):
        shutil.copy(SOUNDS / name, Path(folder) / name)
