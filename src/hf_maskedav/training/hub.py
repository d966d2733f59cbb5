"""Pushing a finished training folder to the Hugging Face Hub."""

from __future__ import annotations

import os

# Training by-products that do not belong in a model repository (best_model/ is a copy of the folder itself).
IGNORE_PATTERNS = ["checkpoint-*", ".checkpoint-*", "checkpoint-*/**", "runs/**", "*.tmp", "*.tmp/**", "best_model/**",
                   "iteration-*/**"]  # stage-2 iterations before the last (the final model is the folder itself)


def push_to_hub(
    output_dir: str,
    repo_id: str,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload model trained with hf_maskedav",
    api=None,
) -> str:
    """Create ``repo_id`` if needed and upload ``output_dir`` (weights, config, feature extractor, card, pictures),
    leaving out checkpoints and TensorBoard runs.

    Args:
        api: a ``huggingface_hub.HfApi`` (made with ``token`` when omitted).

    Returns:
        the URL of the commit.
    """
    if not os.path.isfile(os.path.join(output_dir, "config.json")):
        raise FileNotFoundError(f"{output_dir} has no config.json; save the model with save_pretrained first")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    repo_id = getattr(repo_url, "repo_id", repo_id)
    commit = api.upload_folder(
        repo_id=repo_id, folder_path=output_dir, commit_message=commit_message, ignore_patterns=IGNORE_PATTERNS
    )
    return str(getattr(commit, "commit_url", commit))


def repo_name(args, output_dir: str | None = None) -> str:
    """The model's name for its card and Hub repo: ``--hub_model_id``, else the output folder's name."""
    return args.hub_model_id or os.path.basename(os.path.abspath(output_dir or args.output_dir))


def push_output(args, log=print) -> None:
    """``--push_to_hub``: upload ``--output_dir`` to :func:`repo_name` with ``--hub_token`` and log the commit (main
    process only; nothing without the flag)."""
    if args.push_to_hub:
        log(f"pushed to {push_to_hub(args.output_dir, repo_name(args), token=args.hub_token)}")


__all__ = ["IGNORE_PATTERNS", "push_output", "push_to_hub", "repo_name"]
