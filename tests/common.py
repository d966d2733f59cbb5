"""Checks every model family runs: a mixin in the spirit of transformers' ``ModelTesterMixin``.

A family's test class subclasses :class:`ModelTesterMixin` and provides

* ``all_model_classes``: the classes to check,
* ``get_config()``: a tiny config,
* ``get_inputs(model_class)``: deterministic inputs (pin the masking noise: the tests compare two forward passes),
  including ``labels`` for heads that compute a loss.

It also holds :func:`load_script`, for the tests that import a script of ``examples/`` or ``conversion/``.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import torch

from hf_maskedav.layers import FixedPositionTable


def load_script(path: Path, name: str | None = None):
    """Import a script file (not a package module) as a module named ``name`` (default: the file's stem)."""
    spec = importlib.util.spec_from_file_location(name or Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _first_tensor(output):
    for name in ("loss", "logits", "last_hidden_state"):
        value = getattr(output, name, None)
        if value is not None:
            return value
    raise AssertionError("model output has neither loss, logits nor last_hidden_state")


def _outputs(output) -> dict[str, torch.Tensor]:
    return {k: v for k, v in output.items() if isinstance(v, torch.Tensor)}


class ModelTesterMixin:
    all_model_classes: tuple = ()

    def get_config(self):  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def get_inputs(self, model_class) -> dict:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def build(self, model_class, config=None, attn_implementation=None):
        torch.manual_seed(0)
        config = copy.deepcopy(config or self.get_config())
        if attn_implementation is not None:
            return model_class._from_config(config, attn_implementation=attn_implementation)
        return model_class(config)

    def test_forward_runs_and_is_finite(self):
        for model_class in self.all_model_classes:
            model = self.build(model_class).eval()
            with torch.no_grad():
                out = model(**self.get_inputs(model_class))
            for name, value in _outputs(out).items():
                if value.is_floating_point():
                    assert torch.isfinite(value).all(), f"{model_class.__name__}.{name} is not finite"

    def test_return_dict_false_gives_tuple(self):
        for model_class in self.all_model_classes:
            model = self.build(model_class).eval()
            with torch.no_grad():
                as_dict = model(**self.get_inputs(model_class))
                as_tuple = model(**self.get_inputs(model_class), return_dict=False)
            assert isinstance(as_tuple, tuple)
            torch.testing.assert_close(as_tuple[0], _first_tensor(as_dict))

    def test_save_load_round_trip(self, tmp_path):
        for model_class in self.all_model_classes:
            model = self.build(model_class).eval()
            with torch.no_grad():
                before = _outputs(model(**self.get_inputs(model_class)))
            folder = tmp_path / model_class.__name__
            model.save_pretrained(folder)
            assert (folder / "model.safetensors").is_file(), "weights must be saved as safetensors"
            reloaded = model_class.from_pretrained(folder).eval()
            with torch.no_grad():
                after = _outputs(reloaded(**self.get_inputs(model_class)))
            assert before.keys() == after.keys()
            for name in before:
                torch.testing.assert_close(after[name], before[name], msg=f"{model_class.__name__}.{name}")

    def test_every_trainable_parameter_gets_a_gradient(self):
        for model_class in self.all_model_classes:
            model = self.build(model_class).train()
            inputs = self.get_inputs(model_class)
            out = model(**inputs)
            if getattr(out, "loss", None) is None:
                _first_tensor(out).float().pow(2).mean().backward()
            else:
                out.loss.backward()
            missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
            assert not missing, f"{model_class.__name__}: no gradient for {missing}"

    def test_eager_and_sdpa_agree(self):
        for model_class in self.all_model_classes:
            eager = self.build(model_class, attn_implementation="eager").eval()
            sdpa = self.build(model_class, attn_implementation="sdpa").eval()
            sdpa.load_state_dict(eager.state_dict())
            assert sdpa.config._attn_implementation == "sdpa"
            with torch.no_grad():
                a = _outputs(eager(**self.get_inputs(model_class)))
                b = _outputs(sdpa(**self.get_inputs(model_class)))
            for name in a:
                torch.testing.assert_close(b[name], a[name], atol=1e-5, rtol=1e-4, msg=f"{model_class.__name__}.{name}")

    def test_gradient_checkpointing_gives_same_loss_and_gradients(self):
        for model_class in self.all_model_classes:
            reference = self.build(model_class).train()
            checkpointed = self.build(model_class).train()
            checkpointed.load_state_dict(reference.state_dict())
            enable = getattr(checkpointed, "activation_checkpointing_enable", None) or checkpointed.gradient_checkpointing_enable
            enable()
            results = []
            for model in (reference, checkpointed):
                torch.manual_seed(1)
                out = model(**self.get_inputs(model_class))
                loss = out.loss if getattr(out, "loss", None) is not None else _first_tensor(out).pow(2).mean()
                loss.backward()
                results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
            torch.testing.assert_close(results[1][0], results[0][0])
            assert results[0][1].keys() == results[1][1].keys()
            for name in results[0][1]:
                torch.testing.assert_close(results[1][1][name], results[0][1][name], atol=1e-5, rtol=1e-4, msg=name)

    def test_fixed_tables_correct_after_init_and_from_pretrained(self, tmp_path):
        for model_class in self.all_model_classes:
            model = self.build(model_class)
            tables = {n: m for n, m in model.named_modules() if isinstance(m, FixedPositionTable)}
            for name, table in tables.items():
                torch.testing.assert_close(table.table, table.build(), msg=f"{name} after {model_class.__name__}(config)")
                assert table.table.abs().sum() > 0, f"{name} is all zeros"
            model.save_pretrained(tmp_path / model_class.__name__)
            reloaded = model_class.from_pretrained(tmp_path / model_class.__name__)
            for name, table in ((n, m) for n, m in reloaded.named_modules() if isinstance(m, FixedPositionTable)):
                torch.testing.assert_close(table.table, table.build(), msg=f"{name} after from_pretrained")
            # every non-persistent buffer must be rebuilt too (from_pretrained materialises them empty)
            fresh = dict(model.named_buffers())
            for name, buffer in reloaded.named_buffers():
                torch.testing.assert_close(buffer, fresh[name], msg=f"buffer {name} after from_pretrained")
