"""Check the fake port modules (boards/fakes) against a port's official stubs.

    python boards/tests/fakecheck.py PORT     (a port of boards/table.py; CPython)

Every public name a fake module offers, every public attribute of its
classes, and every parameter name of its functions and methods must exist in
the port's stubs (build/stubs/PORT, installed by `make setup`), and a fake
takes **kwargs or *args only where the stub does: a fake that accepts what
the real port rejects hides the defect it should show. A constant the stubs
only know from the documentation (annotated `Incomplete`, no value) is not
in the port's firmware and counts as missing: that is how rp2's absent
machine.SOFT_RESET shows. Names a fake lists in its _TEST_HOOKS
({"": module names, "Class": attribute names}) are the tests' own handles
and are not checked; _STUB_GAPS ({"Class.method": parameter names}) lists
parameters the port documents and its stubs leave out. Prints one line per problem; exit 1 if any, 2 if the
stubs are not installed.
"""
import ast
import importlib
import inspect
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAKES = ROOT / "boards" / "fakes"
_HOOK = object()  # a test hook among a class's members
sys.path.insert(0, str(ROOT / "boards"))
from table import PORTS  # noqa: E402 - port -> the fake modules its boards import

sys.path.pop(0)  # boards/ holds folders named like the port modules


class Stub:
    """What a .pyi declares: names, and per callable its parameter names."""

    def __init__(self):
        self.names = {}  # name -> Stub (class), Sig (callable) or True (value)


class Sig:
    def __init__(self):
        self.params = set()
        self.varargs = False
        self.varkw = False

    def add(self, fn):
        a = fn.args
        for p in a.posonlyargs + a.args + a.kwonlyargs:
            self.params.add(p.arg)
        self.varargs |= a.vararg is not None
        self.varkw |= a.kwarg is not None


def _documented_only(node, lines):
    """`NAME: Incomplete` with no value and no `## <firmware value>` note: the
    stubs know it from the documentation only, not from the port's firmware."""
    return isinstance(node, ast.AnnAssign) and node.value is None and \
        isinstance(node.annotation, ast.Name) and node.annotation.id == "Incomplete" and \
        "##" not in lines[node.lineno - 1]


def _scope(body, classes, lines):
    out = Stub()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            sig = out.names.get(node.name)
            if not isinstance(sig, Sig):
                sig = out.names[node.name] = Sig()
            sig.add(node)
        elif isinstance(node, ast.ClassDef):
            cls = _scope(node.body, classes, lines)
            cls.bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
            out.names[node.name] = cls
            classes[node.name] = cls
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if not _documented_only(node, lines):
                out.names[node.target.id] = True
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out.names[t.id] = True
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                out.names[a.asname or a.name] = True
    return out


def load_stub(port, module):
    base = ROOT / "build" / "stubs" / port
    path = base / (module + ".pyi")
    if not path.exists():
        path = base / module / "__init__.pyi"
    classes = {}
    text = path.read_text()
    stub = _scope(ast.parse(text).body, classes, text.splitlines())
    stub.classes = classes
    return stub


def member(stub, cls, name):
    """cls's member `name`, looked up through its bases in the same stub."""
    seen = set()
    while cls is not None and id(cls) not in seen:
        seen.add(id(cls))
        if name in cls.names:
            return cls.names[name]
        bases = [stub.classes.get(b) for b in getattr(cls, "bases", [])]
        cls = next((b for b in bases if b is not None), None)
    return None


def check_callable(where, fn, sig, out, gaps=()):
    if not isinstance(sig, Sig):
        return  # a class attribute the stub types as a value; nothing to compare
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return
    for p in params:
        if p.name == "self" or p.name == "cls":
            continue
        if p.kind is p.VAR_KEYWORD:
            if not sig.varkw:
                out.append("%s takes **%s: the port rejects unknown keywords (TypeError)" % (where, p.name))
        elif p.kind is p.VAR_POSITIONAL:
            if not sig.varargs:
                out.append("%s takes *%s: the port does not" % (where, p.name))
        elif p.name not in sig.params and not sig.varkw and p.name not in gaps:
            out.append("%s has parameter %r, not in the stubs" % (where, p.name))


def check_module(port, name, out):
    stub = load_stub(port, name)
    fake = importlib.import_module(name)
    hooks = getattr(fake, "_TEST_HOOKS", {})
    gaps = getattr(fake, "_STUB_GAPS", {})
    for attr, value in vars(fake).items():
        if attr.startswith("_") or attr in hooks.get("", ()):
            continue
        if inspect.ismodule(value) or (callable(value) and getattr(value, "__module__", name) != name):
            continue  # imported from elsewhere
        where = "%s.%s" % (name, attr)
        s = stub.names.get(attr)
        if s is None:
            out.append("%s is not in the %s stubs" % (where, port))
            continue
        if inspect.isclass(value):
            if not isinstance(s, Stub):
                out.append("%s is a class in the fake, not in the stubs" % where)
                continue
            members = {}
            for klass in reversed(value.__mro__[:-1]):  # inherited from another fake too
                owner = sys.modules[klass.__module__]
                skip = set(getattr(owner, "_TEST_HOOKS", {}).get(klass.__name__, ()))
                for m, v in vars(klass).items():
                    members[m] = _HOOK if m in skip else v
            for m, v in members.items():
                if v is _HOOK or (m.startswith("_") and m != "__init__"):
                    continue
                ms = member(stub, s, m)
                if ms is None:
                    out.append("%s.%s is not in the %s stubs" % (where, m, port))
                elif callable(v) or isinstance(v, (staticmethod, classmethod)):
                    f = v.__func__ if isinstance(v, (staticmethod, classmethod)) else v
                    check_callable("%s.%s" % (where, m), f, ms, out, gaps.get("%s.%s" % (attr, m), ()))
        elif inspect.isfunction(value):
            check_callable(where, value, s, out)


def main(argv):
    if len(argv) != 1 or argv[0] not in PORTS:
        print("usage: python boards/tests/fakecheck.py PORT   (PORT: %s)" % ", ".join(PORTS), file=sys.stderr)
        return 2
    port = argv[0]
    if not (ROOT / "build" / "stubs" / port / "machine.pyi").exists():
        print("fakecheck: the %s stubs are not installed: run `make setup`" % port, file=sys.stderr)
        return 2
    sys.path.insert(0, str(FAKES))
    sys.modules["micropython"] = types.ModuleType("micropython")  # the fakes import it; not checked here
    import fakeport

    fakeport.NAME = port
    out = []
    for name in PORTS[port]["fakes"]:
        check_module(port, name, out)
    for line in out:
        print(line)
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
