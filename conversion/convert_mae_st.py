"""Convert official MAE-ST checkpoints (facebookresearch/mae_st ``.pth`` and PySlowFast ``.pyth``) into Hub-ready
hf_maskedav folders.

Examples:
    # a released encoder (the mae_st and SlowFast releases are pretrained models; no fine-tuned weights exist)
    python conversion/convert_mae_st.py --preset mae-st-large-k400-pretrained --output_dir out/mae-st-large-k400
    python conversion/convert_mae_st.py --preset mae-st-base-k400-slowfast-pretrained --output_dir out/mae-st-base
    # any architecture, described by the official constructor's kwargs (a parity fixture.json works as is),
    # verified against the official outputs stored next to it
    python conversion/convert_mae_st.py --official_kwargs ../shared/fixtures/official/mae_st_pretrain_tiny/fixture.json \
        --verify --output_dir out/tiny
"""

from hf_maskedav.conversion import mae_st
from hf_maskedav.conversion.cli import ConversionSpec, main

SPEC = ConversionSpec(
    family="mae_st",
    presets=mae_st.PRESETS,
    build_model=mae_st.build_model,
    convert_state_dict=mae_st.convert_state_dict,
    build_processor=mae_st.build_processor,
    verify_fixture=mae_st.verify_fixture,
    containers=mae_st.OFFICIAL_CONTAINERS,
    pipeline_tag={"pretraining": "feature-extraction", "encoder": "feature-extraction",
                  "classification": "video-classification"},
    tags=("video", "mae-st", "masked-autoencoder", "self-supervised-learning"),
    task_from_kwargs=mae_st.task_from_kwargs,
    default_license="cc-by-nc-4.0",
    official_repos=("facebookresearch/mae_st",),
    paper={
        "title": "Masked Autoencoders As Spatiotemporal Learners",
        "url": "https://arxiv.org/abs/2205.09113",
        "bibtex": "@inproceedings{feichtenhofer2022masked,\n  title     = {Masked Autoencoders As Spatiotemporal "
        "Learners},\n  author    = {Feichtenhofer, Christoph and Fan, Haoqi and Li, Yanghao and He, Kaiming},\n  "
        "booktitle = {NeurIPS},\n  year      = {2022}\n}",
    },
)

if __name__ == "__main__":
    main(SPEC)
