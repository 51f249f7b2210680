"""ECL's fidelity to its paper and references (issue 13): every trainable tensor learns, the
cross-attention follows TalkNet ([21]), deep_avsr's released teachers load, and the teacher
modules import one way."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from detectors.ecl import ECL
from pipeline.errors import ConfigError
from test_detectors import LABELS, synthetic_inputs

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- 1. no dead tensor: tests/test_tensors_learn.py covers every ECL preset and ablation ----------------

# --- 2. cross-attention as TalkNet wires it --------------------------------------------------------

def _fusion(**kwargs):
    from detectors.modules.ecl_fusion import ECLCrossModalFusion

    torch.manual_seed(0)
    return ECLCrossModalFusion(dim=16, num_heads=2, dropout=0.0, **kwargs).eval()


def test_the_module_with_source_f_a_takes_keys_and_values_from_f_a():
    """Changing F_v at one time step is a change of one *query*: the F_a-source module's output moves at
    that step only. Changing F_a at one step changes keys/values: its output moves at every step."""
    fusion = _fusion()
    g = torch.Generator().manual_seed(1)
    f_a, f_v = torch.randn(2, 6, 16, generator=g), torch.randn(2, 6, 16, generator=g)
    with torch.no_grad():
        base = fusion(f_a, f_v)["tokens"][..., :16]  # the module whose source is F_a
        f_v2 = f_v.clone()
        f_v2[:, 3] += 2.0
        moved_v = (fusion(f_a, f_v2)["tokens"][..., :16] - base).abs().amax(dim=(0, 2))
        f_a2 = f_a.clone()
        f_a2[:, 3] += 2.0
        moved_a = (fusion(f_a2, f_v)["tokens"][..., :16] - base).abs().amax(dim=(0, 2))
    assert moved_v[3] > 1e-3
    assert torch.all(moved_v[[0, 1, 2, 4, 5]] < 1e-6), moved_v
    assert torch.all(moved_a > 1e-4), moved_a


def test_with_uniform_attention_the_f_a_source_module_ignores_f_v():
    """Zero query/key projections make every attention weight equal: what is left depends on the source alone."""
    fusion = _fusion()
    with torch.no_grad():
        for m in fusion.modules():
            if isinstance(m, torch.nn.MultiheadAttention):
                m.in_proj_weight[: 2 * m.embed_dim] = 0
                m.in_proj_bias[: 2 * m.embed_dim] = 0
    g = torch.Generator().manual_seed(2)
    f_a, f_v = torch.randn(2, 5, 16, generator=g), torch.randn(2, 5, 16, generator=g)
    with torch.no_grad():
        a_src = fusion(f_a, f_v)["tokens"]
        other_v = fusion(f_a, torch.randn(2, 5, 16, generator=g))["tokens"]
        other_a = fusion(torch.randn(2, 5, 16, generator=g), f_v)["tokens"]
    torch.testing.assert_close(other_v[..., :16], a_src[..., :16])  # F_a's module: F_v plays no part
    torch.testing.assert_close(other_a[..., 16:], a_src[..., 16:])  # F_v's module: F_a plays no part
    assert not torch.allclose(other_a[..., :16], a_src[..., :16])


def test_the_other_convention_is_a_named_option_and_the_paper_preset_follows_talknet():
    assert ECL.from_preset("tiny").config.cross_attention == "talknet"
    from detectors.ecl.detector import ECLConfig

    assert ECLConfig().cross_attention == "talknet"  # what the paper preset ({}) builds
    fusion = _fusion(cross_attention="query-own-stream")
    g = torch.Generator().manual_seed(3)
    f_a, f_v = torch.randn(1, 4, 16, generator=g), torch.randn(1, 4, 16, generator=g)
    f_v2 = f_v.clone()
    f_v2[:, 0] += 2.0
    with torch.no_grad():
        moved = (fusion(f_a, f_v2)["tokens"][..., :16] - fusion(f_a, f_v)["tokens"][..., :16]).abs().amax(dim=(0, 2))
    assert torch.all(moved > 1e-4)  # here F_v is the first module's keys/values
    with pytest.raises(ConfigError, match="cross_attention"):
        ECL.from_preset("tiny", cross_attention="sideways")


# --- 3a. deep_avsr's released teachers -------------------------------------------------------------

def _encoder_stack(prefix: str) -> dict[str, tuple[int, ...]]:
    """deep_avsr's nn.TransformerEncoder(layer(d=512, 8 heads, ffn 2048), 6 layers) tensor names and shapes."""
    shapes = {}
    for i in range(6):
        p = f"{prefix}.layers.{i}."
        shapes |= {p + "self_attn.in_proj_weight": (1536, 512), p + "self_attn.in_proj_bias": (1536,),
                   p + "self_attn.out_proj.weight": (512, 512), p + "self_attn.out_proj.bias": (512,),
                   p + "linear1.weight": (2048, 512), p + "linear1.bias": (2048,),
                   p + "linear2.weight": (512, 2048), p + "linear2.bias": (512,),
                   p + "norm1.weight": (512,), p + "norm1.bias": (512,),
                   p + "norm2.weight": (512,), p + "norm2.bias": (512,)}
    return shapes


def released_shapes(kind: str) -> dict[str, tuple[int, ...]]:
    """The tensors of deep_avsr's audio_only AudioNet, video_only VideoNet and VisualFrontend, written out
    from its model definitions (config: 321 STFT bins, d 512, 40 classes, PE length 2500)."""
    if kind in ("audio", "video"):
        stack = "audio" if kind == "audio" else "video"
        shapes = {"positionalEncoding.pe": (2500, 1, 512)}
        shapes |= _encoder_stack(f"{stack}Encoder") | _encoder_stack(f"{stack}Decoder")
        shapes |= {"outputConv.weight": (40, 512, 1), "outputConv.bias": (40,)}
        if kind == "audio":
            shapes |= {"audioConv.weight": (512, 321, 4), "audioConv.bias": (512,)}
        return shapes
    bn = lambda p, c: {f"{p}.weight": (c,), f"{p}.bias": (c,), f"{p}.running_mean": (c,),  # noqa: E731
                       f"{p}.running_var": (c,), f"{p}.num_batches_tracked": ()}
    shapes = {"frontend3D.0.weight": (64, 1, 5, 7, 7)} | bn("frontend3D.1", 64)
    cin = 64
    for layer, cout in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"resnet.layer{layer}.{block}"
            first_in = cin if block == 0 else cout
            shapes |= {f"{p}.conv1.weight": (cout, first_in, 3, 3)} | bn(f"{p}.bn1", cout)
            shapes |= {f"{p}.conv2.weight": (cout, cout, 3, 3)} | bn(f"{p}.outbn", cout)
            if block == 0 and layer > 1:
                shapes[f"{p}.downsample.weight"] = (cout, cin, 1, 1)
        cin = cout
    return shapes


def random_state(kind: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in released_shapes(kind).items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(100)
        elif name.endswith("running_var"):
            state[name] = 0.5 + torch.rand(shape, generator=g)
        else:
            state[name] = 0.02 * torch.randn(shape, generator=g)
    return state


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Files as deep_avsr writes them: torch.save(model.state_dict(), path), the frontend in its own file."""
    from collections import OrderedDict

    folder = tmp_path_factory.mktemp("deep_avsr")
    for name, kind in (("audio-only.pt", "audio"), ("video-only.pt", "video"), ("visual_frontend.pt", "frontend")):
        torch.save(OrderedDict(random_state(kind)), folder / name)
    return folder


def test_deep_avsr_teachers_load_into_ecl_and_give_character_posteriors(released):
    from detectors.ecl.teachers import CHARACTERS

    torch.manual_seed(0)
    model = ECL.from_preset("tiny", teacher_audio=str(released / "audio-only.pt"),
                            teacher_video=str(released / "video-only.pt"))
    assert "mouth" in model.inputs.modalities  # the VSR teacher's input
    for modality, teacher in model._teachers.items():
        assert teacher.symbols == CHARACTERS and teacher.trained_on is None
        assert not any(p.requires_grad for p in teacher.parameters())
    inputs = synthetic_inputs(model.inputs, LABELS)
    posteriors = model.teacher_posteriors(inputs, model.config.num_frames)
    assert set(posteriors) == {"audio", "video"}
    for p in posteriors.values():
        assert p.shape == (len(LABELS), model.config.num_frames, len(CHARACTERS))
        assert torch.isfinite(p).all() and (p >= 0).all()
        torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:2]))
    # the raw teachers: one posterior per video frame at 25 Hz
    assert model._teachers["audio"].posteriors(inputs).shape[1] == model.config.num_frames
    assert model._teachers["video"].posteriors(inputs).shape[1] == model.config.num_frames
    model.train()
    losses = model.loss(model(inputs), {"label": LABELS})
    assert {"cls", "dist", "contra"} <= set(losses) and all(torch.isfinite(v) for v in losses.values())


def test_the_released_tensors_load_with_their_values(released):
    from detectors.ecl.teachers import load_teacher

    teacher = load_teacher(released / "video-only.pt", expect_modality="video")
    state = torch.load(released / "visual_frontend.pt")
    torch.testing.assert_close(teacher.frontend.state_dict()["resnet.layer3.0.downsample.weight"],
                               state["resnet.layer3.0.downsample.weight"])
    audio = load_teacher(released / "audio-only.pt", expect_modality="audio")
    torch.testing.assert_close(audio.net.state_dict()["audioDecoder.layers.5.linear2.weight"],
                               torch.load(released / "audio-only.pt")["audioDecoder.layers.5.linear2.weight"])


def test_a_wrong_or_missing_released_tensor_is_named(tmp_path, released):
    from detectors.ecl.teachers import TeacherError, load_teacher

    state = random_state("audio")
    state["audioEncoder.layers.2.linear1.weight"] = torch.zeros(1024, 512)
    torch.save(state, tmp_path / "wrong.pt")
    with pytest.raises(Exception, match=r"audioEncoder\.layers\.2\.linear1\.weight"):
        load_teacher(tmp_path / "wrong.pt")
    state = random_state("audio")
    del state["audioDecoder.layers.4.norm2.bias"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(Exception, match=r"audioDecoder\.layers\.4\.norm2\.bias"):
        load_teacher(tmp_path / "missing.pt")
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "video-only.pt").write_bytes((released / "video-only.pt").read_bytes())
    with pytest.raises(TeacherError, match="visual_frontend.pt"):
        load_teacher(alone / "video-only.pt")
    with pytest.raises(TeacherError, match="visual frontend alone"):
        load_teacher(released / "visual_frontend.pt")
    with pytest.raises(TeacherError, match="expected a video one"):
        load_teacher(released / "audio-only.pt", expect_modality="video")


def test_deep_avsr_characters_map_onto_avdfs_set():
    from detectors.ecl.deep_avsr import to_characters
    from detectors.ecl.teachers import CHARACTERS

    # deep_avsr's CHAR_TO_INDEX (audio_only/config.py), written out here
    char_to_index = {" ": 1, "'": 22, "A": 5, "E": 2, "T": 3, "Z": 28, "0": 29, "<EOS>": 39}
    probs = torch.full((1, 5, 40), 1e-9)
    for t, ch in enumerate(["A", "'", " ", "<EOS>", "0"]):
        probs[0, t, char_to_index[ch]] = 1.0
    probs[0, 4, char_to_index["Z"]] = 0.5  # a digit's mass is dropped: Z wins after renormalising
    out = torch.softmax(to_characters(torch.log(probs / probs.sum(-1, keepdim=True))), dim=-1)[0]
    assert [CHARACTERS.symbols[i] for i in out.argmax(-1)] == ["A", "'", " ", "<blank>", "Z"]
    assert out[3, 0] > 0.99 and out[4, CHARACTERS.index("Z")] > 0.99


def test_stft_features_match_scipy_as_deep_avsr_computes_them():
    from scipy import signal

    from detectors.ecl.deep_avsr import stft_features

    rng = np.random.default_rng(0)
    audio = rng.standard_normal(8000).astype(np.float64)
    unit = audio / np.sqrt(np.mean(audio**2))
    _, _, ref = signal.stft(unit, 16000, window="hamming", nperseg=640, noverlap=480, boundary=None, padded=False)
    ours = stft_features(torch.from_numpy(audio)[None], centre=False)[0].double().numpy()
    assert ours.shape == np.abs(ref).T.shape == (47, 321)
    np.testing.assert_allclose(ours, np.abs(ref).T, rtol=1e-4, atol=1e-5)
    assert stft_features(torch.from_numpy(audio)[None]).shape[1] == 8000 // 160  # centred: 4 per video frame


# --- 4. layering -------------------------------------------------------------------------------------

def _imports(path: Path) -> set[str]:
    """detectors.ecl modules a file imports, at module level or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("detectors.ecl"):
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("detectors.ecl")}
    return names


def test_ecl_modules_import_one_way():
    modules = {f"detectors.ecl.{p.stem}": p for p in (ROOT / "detectors" / "ecl").glob("*.py") if p.stem != "__init__"}
    graph = {m: {i for i in _imports(p) if i in modules and i != m} for m, p in modules.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start])

    cycles = sorted(m for m in graph if reaches(m, m, set()))
    assert not cycles, f"import cycle among {cycles}: {graph}"
