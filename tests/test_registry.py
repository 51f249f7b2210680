import pytest

from pipeline.errors import RegistryError
from pipeline.registry import Registry, load_object


class Alpha:
    pass


class Beta:
    pass


def test_lazy_strings_classes_and_module_paths():
    reg = Registry("widgets")
    reg.register("alpha", f"{__name__}:Alpha")
    reg.register("beta", Beta)
    assert reg.get("alpha") is Alpha
    assert reg.get("beta") is Beta
    assert reg.get(f"{__name__}:Beta") is Beta  # unregistered module:Class path
    assert reg.names() == ["alpha", "beta"]


def test_decorator_registration():
    reg = Registry("widgets")

    @reg.register("gamma")
    class Gamma:
        pass

    assert reg.get("gamma") is Gamma


def test_collision_refused():
    reg = Registry("widgets")
    reg.register("alpha", Alpha)
    reg.register("alpha", Alpha)  # same target again is fine
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("alpha", Beta, origin="plugin-x")


def test_did_you_mean():
    reg = Registry("widgets")
    reg.register("alpha", Alpha)
    with pytest.raises(RegistryError, match="did you mean 'alpha'"):
        reg.get("alpah")


def test_bad_paths():
    with pytest.raises(RegistryError, match="not a 'module:Class' path"):
        load_object("justaname")
    with pytest.raises(RegistryError, match="cannot import module"):
        load_object("no_such_module_xyz:Thing")
    with pytest.raises(RegistryError, match="has no attribute"):
        load_object(f"{__name__}:Gamma")


def test_validation_hook():
    def must_be_alpha(name, cls):
        if cls is not Alpha:
            raise RegistryError(f"{name} does not implement the interface")

    reg = Registry("widgets", validate=must_be_alpha)
    reg.register("beta", Beta)
    with pytest.raises(RegistryError, match="does not implement"):
        reg.get("beta")
