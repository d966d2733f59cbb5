"""Convert official VideoMAE V2 checkpoints (OpenGVLab/VideoMAEv2) into Hub-ready hf_maskedav folders.

The converted models are hf_maskedav's VideoMAE classes (``model_type`` ``maskedav_videomae``); pretraining
conversions get V2's dual masking (``decoder_mask_ratio=0.5``, the released scripts' value).

Examples:
    # the distilled ViT-S/B (Hub file, downloaded once into ~/.cache/hf_maskedav)
    python conversion/convert_videomae_v2.py --preset videomaev2-small-k710-distilled --output_dir out/videomaev2-s
    # ViT-g (distributed on request): the preset describes the architecture, the file is yours; checkpoints written
    # by the official pretraining script under torch.compile ('_orig_mod.' keys) are accepted as they are
    python conversion/convert_videomae_v2.py --preset videomaev2-giant-hybrid-pt-1200e-pretrained \
        --checkpoint vit_g_hybrid_pt_1200e.pth --output_dir out/videomaev2-giant-pt
    # any architecture from the official constructor kwargs (a parity fixture.json works as is), verified
    python conversion/convert_videomae_v2.py --official_kwargs ../shared/fixtures/official/videomaev2_pretrain_tiny/fixture.json \
        --verify --output_dir out/tiny-v2
    # a remote-code Hub repo (OpenGVLab/VideoMAEv2-Base ..., or a local copy); --verify runs the repo's own code
    python conversion/convert_videomae_v2.py --transformers_checkpoint OpenGVLab/VideoMAEv2-Base --output_dir out/v2-base

In Python: ``hf_maskedav.conversion.videomae_v2.load_remote_code_videomaev2("OpenGVLab/VideoMAEv2-Base")``.
"""

from hf_maskedav.conversion import videomae_v2
from hf_maskedav.conversion.cli import ConversionSpec, main

SPEC = ConversionSpec(
    family="videomae_v2",
    presets=videomae_v2.PRESETS,
    build_model=videomae_v2.build_model,
    convert_state_dict=videomae_v2.convert_state_dict,
    build_processor=videomae_v2.build_processor,
    verify_fixture=videomae_v2.verify_fixture,
    containers=videomae_v2.OFFICIAL_CONTAINERS,
    pipeline_tag={"pretraining": "feature-extraction", "classification": "video-classification",
                  "encoder": "feature-extraction"},
    tags=("video", "videomae", "videomae-v2", "masked-autoencoder", "self-supervised-learning"),
    task_from_kwargs=videomae_v2.task_from_kwargs,
    default_license="cc-by-nc-4.0",
    official_repos=("OpenGVLab/VideoMAEv2",),
    from_transformers=videomae_v2.from_remote_code,
    verify_transformers=videomae_v2.verify_against_remote_code,
    paper={
        "title": "VideoMAE V2: Scaling Video Masked Autoencoders with Dual Masking",
        "url": "https://arxiv.org/abs/2303.16727",
        "bibtex": "@inproceedings{wang2023videomaev2,\n  title     = {VideoMAE V2: Scaling Video Masked Autoencoders with "
        "Dual Masking},\n  author    = {Wang, Limin and Huang, Bingkun and Zhao, Zhiyu and Tong, Zhan and He, Yinan "
        "and Wang, Yi and Wang, Yali and Qiao, Yu},\n  booktitle = {CVPR},\n  year      = {2023}\n}",
    },
)

if __name__ == "__main__":
    main(SPEC)
