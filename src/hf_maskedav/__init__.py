"""hf_maskedav: masked self-supervised audio and video models for the Hugging Face ecosystem.

``import hf_maskedav`` is light (milliseconds on top of ``import transformers``): it imports no model, processor or
pipeline module. Each public name is imported from the module that defines it on first access, so
``from hf_maskedav import AudioMAEConfig`` loads the Audio-MAE configuration only. The import also arranges the
registration of every family with the transformers Auto classes and pipeline registry
(:mod:`hf_maskedav.registration`), done when transformers loads those, so ``AutoModel.from_pretrained(folder)`` and
``pipeline("audio-classification", model=folder)`` work and import only the family of ``folder``.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_reexports
from .registration import FAMILIES as _FAMILIES
from .registration import register_auto_classes, register_when_transformers_loads  # noqa: F401 (public before)
from .version import __version__

register_when_transformers_loads()

# the public names are each family's (hf_maskedav.models.<family>.__all__, written there once), for the families of
# the registration table; ``from hf_maskedav import AudioMAEConfig`` imports the Audio-MAE configuration module only
__getattr__, __dir__ = lazy_reexports(
    __name__, [f"models.{family}" for family in _FAMILIES], eager={"__version__": __version__}
)

if TYPE_CHECKING:  # static tools: the same names, from the family packages
    from .models.audiomae import *  # noqa: F403
    from .models.avmae import *  # noqa: F403
    from .models.cavmae import *  # noqa: F403
    from .models.mae_st import *  # noqa: F403
    from .models.maskfeat import *  # noqa: F403
    from .models.mavil import *  # noqa: F403
    from .models.videomae import *  # noqa: F403
