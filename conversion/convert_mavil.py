"""Convert MAViL checkpoints of the authors' encoder code in AV-SUPERB (roger-tseng/av-superb, ``upstream_models/mavil``)
into Hub-ready hf_maskedav folders.

Meta released no official MAViL code or weights; the only public checkpoint is the MAViL-Base encoder the authors gave
to AV-SUPERB (preset ``mavil-base-avsuperb-pretrained``). Its layout -- depths, heads, widths -- is read from the keys;
``--official_kwargs`` gives what the keys do not tell (``num_heads``, ``n_frm``, ``audio_size``, ``video_size``; a
parity fixture's ``fixture.json`` works as is). The weights' licence is unclear (see the model card): convert from the
original URL for your own use rather than re-hosting them.

Examples:
    # the released MAViL-Base encoder (downloaded once into ~/.cache/hf_maskedav)
    python conversion/convert_mavil.py --preset mavil-base-avsuperb-pretrained --output_dir out/mavil-base
    # a file in the av-superb layout (e.g. a fine-tuned one: its heads are read from the keys)
    python conversion/convert_mavil.py --checkpoint mavil_as_pt_ft_a+v.pth --official_kwargs '{"num_heads": 12}' \
        --labels_csv class_labels_indices.csv --output_dir out/mavil-as2m-ft
    # a parity fixture, verified against the outputs of the authors' code stored next to it
    python conversion/convert_mavil.py --official_kwargs ../shared/fixtures/official/mavil_avsuperb_tiny/fixture.json \
        --verify --output_dir out/tiny
"""

from hf_maskedav.conversion import mavil
from hf_maskedav.conversion.cli import ConversionSpec, main

SPEC = ConversionSpec(
    family="mavil",
    presets=mavil.PRESETS,
    build_model=mavil.build_model,
    convert_state_dict=mavil.convert_state_dict,
    build_processor=mavil.build_processor,
    verify_fixture=mavil.verify_fixture,
    containers=("model",),
    # The Hub has no audio-visual tag: the models take video files with their audio track.
    pipeline_tag={"encoder": "feature-extraction", "classification": "video-classification"},
    pipeline_task={"classification": "audio-video-classification"},
    tags=("audio", "video", "audio-visual", "mavil", "masked-autoencoder", "contrastive-learning",
          "self-supervised-learning", "av-superb"),
    task_from_checkpoint=mavil.task_from_checkpoint,
    default_license="cc-by-nc-4.0",
    official_repos=("roger-tseng/av-superb",),
    fixture_filter=mavil.is_mavil_fixture,
    paper={
        "title": "MAViL: Masked Audio-Video Learners",
        "url": "https://arxiv.org/abs/2212.08071",
        "bibtex": "@inproceedings{huang2023mavil,\n  title     = {MAViL: Masked Audio-Video Learners},\n  author    = "
        "{Huang, Po-Yao and Sharma, Vasu and Xu, Hu and Ryali, Chaitanya and Fan, Haoqi and Li, Yanghao and\n"
        "               Li, Shang-Wen and Ghosh, Gargi and Malik, Jitendra and Feichtenhofer, Christoph},\n  booktitle = "
        "{NeurIPS},\n  year      = {2023}\n}",
    },
)

if __name__ == "__main__":
    main(SPEC)
