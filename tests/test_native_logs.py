"""Third-party native log lines are dropped from file descriptor 2; everything else gets through."""
import os
import sys

from pipeline.native_logs import filtered_stderr

NOISE = (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
         b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
         b"W0000 00:00:1796193431.150496   21886 inference_feedback_manager.cc:114] Feedback manager ...\n"
         b"I1202 06:12:01.123456  1234 graph.cc:12] started\n")
KEPT = b"E0000 00:00:1796193431.150496   21886 calculator.cc:9] a native error\nsome tool's own message\n"


def test_native_noise_is_dropped_and_the_rest_forwarded(capfd):
    with filtered_stderr():
        os.write(2, NOISE[:30])  # a line split across writes, as C++ streams flush
        os.write(2, NOISE[30:] + KEPT)
        sys.stderr.write("a Python warning\n")  # one write: print's separate newline could land after the filter's lines
    err = capfd.readouterr().err
    # (pytest captures sys.stderr apart from descriptor 2, so the Python line's place is not compared)
    assert "a Python warning\n" in err and err.replace("a Python warning\n", "") == KEPT.decode()


def test_disabled_filter_changes_nothing(capfd):
    with filtered_stderr(enabled=False):
        os.write(2, NOISE)
    assert capfd.readouterr().err == NOISE.decode()


def test_stderr_is_restored_when_the_block_raises(capfd):
    try:
        with filtered_stderr():
            os.write(2, NOISE + b"before the error\n")
            raise ValueError("boom")
    except ValueError:
        pass
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "before the error\nafter\n"
