"""``import hf_maskedav`` is light; names, Auto classes and pipelines still resolve (issue #20).

The import-time and fresh-process checks run in subprocesses: the test process has imported everything already.
"""

import json
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

import hf_maskedav
from hf_maskedav import _import_hooks
from hf_maskedav._lazy import Deferred, DeferredContent, deferred_content

IMPORT_BUDGET_S = 0.5  # issue #20: ``import hf_maskedav`` adds less than this to ``import torch, transformers``


def _python(code: str, timeout: float = 300) -> str:
    """Run ``code`` in a fresh interpreter; returns its stdout (fails the test with its stderr otherwise)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


IMPORT_PROBE = """
    import json, sys, time
    t0 = time.perf_counter()
    import torch, transformers
    t1 = time.perf_counter()
    before = set(sys.modules)
    import hf_maskedav
    t2 = time.perf_counter()
    new = sorted(set(sys.modules) - before)
    print(json.dumps({"base": t1 - t0, "added": t2 - t1, "new": new}))
"""


def test_import_adds_little_to_torch_and_transformers():
    """Minimum of a few fresh processes (the shared machine is noisy): well under the budget, and under a fraction
    of what ``import torch, transformers`` takes in the same process."""
    runs = [json.loads(_python(IMPORT_PROBE)) for _ in range(3)]
    added = min(run["added"] for run in runs)
    base = min(run["base"] for run in runs)
    assert added < IMPORT_BUDGET_S, f"import hf_maskedav added {added:.3f} s (torch + transformers: {base:.3f} s)"
    assert added < 0.25 * base, f"import hf_maskedav added {added:.3f} s, torch + transformers took {base:.3f} s"


def test_import_loads_no_model_processor_or_pipeline_module():
    new = json.loads(_python(IMPORT_PROBE))["new"]
    ours = [name for name in new if name.startswith("hf_maskedav")]
    assert set(ours) <= {
        "hf_maskedav", "hf_maskedav._lazy", "hf_maskedav._import_hooks", "hf_maskedav.registration",
        "hf_maskedav.version",
    }, ours
    heavy = ("transformers.modeling_utils", "transformers.models.auto", "transformers.pipelines", "torchaudio",
             "torchvision", "torchcodec", "hf_maskedav.models.mavil.modeling_mavil")
    assert not [name for name in new if name.startswith(heavy)]


def test_public_names_all_and_dir_are_complete():
    from hf_maskedav.registration import FAMILIES

    expected = {"__version__"}
    families = ("audiomae", "avmae", "cavmae", "mae_st", "maskfeat", "mavil", "videomae")
    assert sorted(FAMILIES) == list(families)  # the top level re-exports the packages of the family table
    for family in families:
        package = __import__(f"hf_maskedav.models.{family}", fromlist=["_"])
        expected |= set(package.__all__) - {"PRESETS"}
        for name in package.__all__:
            assert getattr(package, name) is not None
            assert name in dir(package)
    assert set(hf_maskedav.__all__) == expected
    assert len(hf_maskedav.__all__) == 52
    for name in hf_maskedav.__all__:
        value = getattr(hf_maskedav, name)
        assert name == "__version__" or value.__name__ == name
        assert name in dir(hf_maskedav)
    from hf_maskedav import register_auto_classes  # noqa: F401 (importable before the lazy package, kept)
    from hf_maskedav.models.maskfeat import PRESETS

    assert PRESETS
    with pytest.raises(AttributeError):
        hf_maskedav.NoSuchModel  # noqa: B018
    with pytest.raises(ImportError):
        from hf_maskedav import NoSuchModel  # noqa: F401


def test_a_name_imports_only_its_module_and_subpackages_stay_reachable():
    out = _python("""
        import sys
        import hf_maskedav
        from hf_maskedav import AudioMAEConfig, MAViLVideoProcessor
        print(hf_maskedav.video.read_video.__module__)   # a subpackage, imported eagerly before: still an attribute
        # configuration modules: all of them once transformers' Auto modules load (they register the configs)
        print(sorted(m for m in sys.modules if m.startswith("hf_maskedav.models.") and m.count(".") == 3
                     and ".configuration_" not in m))
    """)
    module, loaded = out.splitlines()
    assert module == "hf_maskedav.video.decoding"
    assert loaded == str(["hf_maskedav.models.mavil.video_processing_mavil"])


@pytest.mark.parametrize("first", [
    "hf_maskedav.pipelines.audio_video_pipeline",      # the class module first: it imports transformers.pipelines
    "hf_maskedav.pipelines.audio_video_classification",
    "transformers.pipelines",
])
def test_the_pipeline_registers_whichever_module_is_imported_first(first):
    """The registration hook fires when transformers.pipelines loads; it must not meet our pipeline module
    half-initialised (it did when ``audio_video_pipeline`` was imported first)."""
    out = _python(f"""
        import warnings
        warnings.simplefilter("error", RuntimeWarning)   # a failed registration is a RuntimeWarning
        import hf_maskedav
        import {first}
        from transformers.pipelines import PIPELINE_REGISTRY
        print("audio-video-classification" in PIPELINE_REGISTRY.get_supported_tasks())
    """)
    assert out.strip() == "True"


def _tiny_audiomae(**kw):
    from hf_maskedav import AudioMAEConfig

    labels = {0: "tone", 1: "noise"}
    return AudioMAEConfig(
        max_length=64, num_mel_bins=32, patch_size=8, patch_stride=8, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=4, intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4, decoder_intermediate_size=64, id2label=labels,
        label2id={v: k for k, v in labels.items()}, **kw,
    )


def test_auto_model_and_pipeline_right_after_import_in_a_fresh_process(tmp_path):
    from hf_maskedav import AudioMAEFeatureExtractor, AudioMAEForAudioClassification

    torch.manual_seed(0)
    AudioMAEForAudioClassification(_tiny_audiomae()).save_pretrained(tmp_path)
    AudioMAEFeatureExtractor(num_mel_bins=32, max_length=64).save_pretrained(tmp_path)
    out = _python(f"""
        import json, sys
        import numpy as np
        import hf_maskedav
        from transformers import AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification, pipeline

        folder = {str(tmp_path)!r}
        model = AutoModel.from_pretrained(folder)
        classifier = AutoModelForAudioClassification.from_pretrained(folder)
        extractor = AutoFeatureExtractor.from_pretrained(folder)
        models_loaded = sorted(m for m in sys.modules if m.startswith("hf_maskedav.models.") and "modeling" in m)
        scores = pipeline("audio-classification", model=folder)(np.zeros(16000, dtype=np.float32), top_k=2)
        print(json.dumps({{
            "model": type(model).__name__, "classifier": type(classifier).__name__,
            "extractor": type(extractor).__name__, "models_loaded": models_loaded,
            "labels": sorted(s["label"] for s in scores),
        }}))
    """)
    result = json.loads(out.splitlines()[-1])
    assert result["model"] == "AudioMAEModel"
    assert result["classifier"] == "AudioMAEForAudioClassification"
    assert result["extractor"] == "AudioMAEFeatureExtractor"
    # the Auto classes imported the Audio-MAE model module only (the first use of a family pays for that family)
    assert result["models_loaded"] == ["hf_maskedav.models.audiomae.modeling_audiomae"]
    assert result["labels"] == ["noise", "tone"]


def test_registration_matches_the_family_table():
    """What ``import hf_maskedav`` registered before issue #20 (eagerly), written out; now resolved on demand."""
    import transformers
    from transformers.pipelines import PIPELINE_REGISTRY

    from hf_maskedav.pipelines import AudioVideoClassificationPipeline, AutoModelForAudioVisualClassification
    from hf_maskedav.registration import register_auto_classes

    register_auto_classes()
    m = hf_maskedav
    models = {
        "AutoModel": {m.AudioMAEConfig: m.AudioMAEModel, m.MaskFeatConfig: m.MaskFeatModel, m.MAViLConfig: m.MAViLModel,
                      m.MaskedAVVideoMAEConfig: m.MaskedAVVideoMAEModel, m.MAESTConfig: m.MAESTModel,
                      m.CAVMAEConfig: m.CAVMAEModel, m.AVMAEConfig: m.AVMAEModel},
        "AutoModelForPreTraining": {
            m.AudioMAEConfig: m.AudioMAEForPreTraining, m.MaskFeatConfig: m.MaskFeatForPreTraining,
            m.MAViLConfig: m.MAViLForPreTraining, m.MaskedAVVideoMAEConfig: m.MaskedAVVideoMAEForPreTraining,
            m.MAESTConfig: m.MAESTForPreTraining, m.CAVMAEConfig: m.CAVMAEForPreTraining,
            m.AVMAEConfig: m.AVMAEForPreTraining},
        "AutoModelForAudioClassification": {
            m.AudioMAEConfig: m.AudioMAEForAudioClassification, m.MAViLConfig: m.MAViLForAudioVisualClassification,
            m.CAVMAEConfig: m.CAVMAEForAudioVisualClassification, m.AVMAEConfig: m.AVMAEForAudioVisualClassification},
        "AutoModelForVideoClassification": {
            m.MaskFeatConfig: m.MaskFeatForVideoClassification, m.MAViLConfig: m.MAViLForAudioVisualClassification,
            m.MaskedAVVideoMAEConfig: m.MaskedAVVideoMAEForVideoClassification,
            m.MAESTConfig: m.MAESTForVideoClassification, m.CAVMAEConfig: m.CAVMAEForAudioVisualClassification,
            m.AVMAEConfig: m.AVMAEForAudioVisualClassification},
        "AutoModelForImageClassification": {m.MaskFeatConfig: m.MaskFeatForImageClassification},
    }
    for auto_name, expected in models.items():
        mapping = getattr(transformers, auto_name)._model_mapping
        for config, model in expected.items():
            assert mapping[config] is model, (auto_name, config)
    audio_visual = {m.MAViLConfig: m.MAViLForAudioVisualClassification,
                    m.CAVMAEConfig: m.CAVMAEForAudioVisualClassification,
                    m.AVMAEConfig: m.AVMAEForAudioVisualClassification}
    for config, model in audio_visual.items():
        assert AutoModelForAudioVisualClassification._model_mapping[config] is model
    for config in (m.AudioMAEConfig, m.MaskFeatConfig, m.MAViLConfig, m.MaskedAVVideoMAEConfig, m.MAESTConfig,
                   m.CAVMAEConfig, m.AVMAEConfig):
        assert transformers.CONFIG_MAPPING[config.model_type] is config
    assert transformers.FEATURE_EXTRACTOR_MAPPING[m.AudioMAEConfig] is m.AudioMAEFeatureExtractor
    assert transformers.FEATURE_EXTRACTOR_MAPPING[m.MAViLConfig] is m.AudioMAEFeatureExtractor
    assert transformers.FEATURE_EXTRACTOR_MAPPING[m.CAVMAEConfig] is m.CAVMAEFeatureExtractor
    assert transformers.FEATURE_EXTRACTOR_MAPPING[m.AVMAEConfig] is m.AVMAEFeatureExtractor
    assert transformers.IMAGE_PROCESSOR_MAPPING[m.MaskFeatConfig] == {"torchvision": m.MaskFeatImageProcessor}
    videos = {m.MaskFeatConfig: m.MaskFeatVideoProcessor, m.MAViLConfig: m.MAViLVideoProcessor,
              m.MaskedAVVideoMAEConfig: m.MaskedAVVideoMAEVideoProcessor, m.MAESTConfig: m.MAESTVideoProcessor,
              m.CAVMAEConfig: m.CAVMAEVideoProcessor, m.AVMAEConfig: m.AVMAEVideoProcessor}
    for config, processor in videos.items():
        assert transformers.VIDEO_PROCESSOR_MAPPING[config] == {"torchvision": processor}
    for config, processor in {m.MAViLConfig: m.MAViLProcessor, m.CAVMAEConfig: m.CAVMAEProcessor,
                              m.AVMAEConfig: m.AVMAEProcessor}.items():
        assert transformers.PROCESSOR_MAPPING[config] is processor
    task = PIPELINE_REGISTRY.check_task("audio-video-classification")[1]
    assert task["impl"] is AudioVideoClassificationPipeline
    assert AutoModelForAudioVisualClassification in task["pt"]
    assert _import_hooks.pending() == []


def test_deferred_content_resolves_on_read_only():
    content = DeferredContent({"plain": int})
    content.add("one", Deferred("collections:OrderedDict"))
    content.add("backends", {"torchvision": Deferred("collections:Counter")})
    content.add("one", Deferred("collections:deque"))  # present: kept, and not resolved
    assert "one" in content and len(content) == 3 and list(content.keys()) == ["plain", "one", "backends"]
    assert isinstance(dict.__getitem__(content, "one"), Deferred)  # membership and keys() resolved nothing
    values = iter(content.values())
    assert next(values) is int and next(values).__name__ == "OrderedDict"
    assert isinstance(dict.__getitem__(content, "backends")["torchvision"], Deferred)  # iteration is lazy
    assert dict(content)["backends"]["torchvision"].__name__ == "Counter"
    assert content.get("missing", 3) == 3
    assert pickle.loads(pickle.dumps(content)) == content


def test_deferred_content_keeps_transformers_registrations():
    """``AutoX.register`` after the swap stores classes as before; a user registration wins over ours."""
    from collections import OrderedDict

    from transformers import AutoModel, PreTrainedConfig, PreTrainedModel
    from transformers.models.auto.auto_factory import _LazyAutoMapping
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    class LazyTestConfig(PreTrainedConfig):
        model_type = "hf_maskedav_lazy_test"

    class LazyTestModel(PreTrainedModel):
        config_class = LazyTestConfig

    mapping = _LazyAutoMapping(CONFIG_MAPPING_NAMES, OrderedDict())
    mapping.register(LazyTestConfig, LazyTestModel)
    content = deferred_content(mapping)
    assert deferred_content(mapping) is content and mapping[LazyTestConfig] is LazyTestModel
    content.add(LazyTestConfig, Deferred("collections:OrderedDict"))
    assert mapping[LazyTestConfig] is LazyTestModel
    assert isinstance(AutoModel._model_mapping._extra_content, DeferredContent)
    from hf_maskedav.registration import register_models

    ours = _LazyAutoMapping(CONFIG_MAPPING_NAMES, OrderedDict())
    register_models(ours, "AutoModel")
    assert pickle.loads(pickle.dumps(ours))[hf_maskedav.AudioMAEConfig] is hf_maskedav.AudioMAEModel


def test_post_import_hook(tmp_path, monkeypatch):
    (tmp_path / "hf_maskedav_hook_probe.py").write_text("VALUE = 1\n")
    (tmp_path / "hf_maskedav_hook_broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []
    _import_hooks.when_imported("hf_maskedav_hook_probe", lambda module: seen.append(module.VALUE))
    _import_hooks.when_imported("hf_maskedav_hook_broken", lambda module: seen.append("broken"))
    assert "hf_maskedav_hook_probe" in _import_hooks.pending()
    import hf_maskedav_hook_probe

    assert seen == [1]
    assert type(hf_maskedav_hook_probe.__loader__).__name__ == "SourceFileLoader"  # real loader kept
    _import_hooks.when_imported("hf_maskedav_hook_probe", lambda module: seen.append(2))  # imported: runs now
    assert seen == [1, 2]
    with pytest.raises(RuntimeError, match="broken on purpose"):
        import hf_maskedav_hook_broken  # noqa: F401
    assert "hf_maskedav_hook_broken" in _import_hooks.pending()  # a failed import keeps the callback
    (tmp_path / "hf_maskedav_hook_broken.py").write_text("VALUE = 3\n")
    sys.modules.pop("hf_maskedav_hook_broken", None)
    import importlib

    importlib.invalidate_caches()
    import hf_maskedav_hook_broken  # noqa: F401, F811

    assert seen == [1, 2, "broken"]
    assert "hf_maskedav_hook_broken" not in _import_hooks.pending()
    for name in ("hf_maskedav_hook_probe", "hf_maskedav_hook_broken"):
        sys.modules.pop(name, None)


def test_post_import_hook_waits_for_the_import_chain(tmp_path, monkeypatch):
    """A watched module imported by one of our modules: its callback runs once our module has finished, not while
    it is half-initialised (the pipeline bug's general form), and in the order the watched modules loaded."""
    (tmp_path / "hf_maskedav_chain_watched.py").write_text("import hf_maskedav_chain_inner\nVALUE = 1\n")
    (tmp_path / "hf_maskedav_chain_inner.py").write_text("INNER = 1\n")
    (tmp_path / "hf_maskedav_chain_outer.py").write_text("import hf_maskedav_chain_watched\nREADY = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_import_hooks, "_TRACKED_PREFIXES", ("hf_maskedav.", "hf_maskedav_chain_outer"))
    seen = []

    def callback(module):
        outer = sys.modules["hf_maskedav_chain_outer"]
        seen.append((module.__name__, getattr(outer, "READY", "half-initialised")))

    _import_hooks.when_imported("hf_maskedav_chain_inner", callback)
    _import_hooks.when_imported("hf_maskedav_chain_watched", callback)
    try:
        import hf_maskedav_chain_outer  # noqa: F401

        assert seen == [("hf_maskedav_chain_inner", True), ("hf_maskedav_chain_watched", True)]
        assert _import_hooks._finder not in sys.meta_path or _import_hooks.pending()
    finally:
        for name in ("hf_maskedav_chain_outer", "hf_maskedav_chain_watched", "hf_maskedav_chain_inner"):
            sys.modules.pop(name, None)
