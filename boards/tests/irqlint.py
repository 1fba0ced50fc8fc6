"""Lint: no big-int arithmetic where a board cannot allocate.

    python boards/tests/irqlint.py BOARD      (CPython; exit 1 on findings)

On the 32-bit ports a small int holds -2**30 .. 2**30-1; anything outside is
a big int on the heap. In a hard IRQ the heap is locked (MemoryError, and
the port disables that IRQ line for good); with interrupts masked an
allocation can start a garbage collection while the interlock IRQ waits.
The Unix port that runs the board tests has 62-bit small ints and cannot
show it, so this lint reads the board's sources instead.

Paths checked: every IRQ handler (the first argument of a `.irq(...)` call;
for a handler made by a method call, the functions nested in that method),
the body of every `try:` that follows `machine.disable_irq()`, and every
function those call, matched by name across the image (an
over-approximation: more is checked, never less). In them, an arithmetic
operation (+ - * // % << >> & | ^ ~) whose operand or result is a known
integer outside the small-int range is reported: a literal, or a const()
of the image (`T.TIM8` through `import timers as T` too). Precompute such
values with const() (`TIM8_BDTR = const(TIM8 + BDTR)`), which the compiler
folds into one constant object.
"""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "boards"))
from build import sources  # noqa: E402 - the same module list as the image

SMALL_MIN = -(1 << 30)
SMALL_MAX = (1 << 30) - 1
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b, ast.LShift: lambda a, b: a << b,
        ast.RShift: lambda a, b: a >> b, ast.BitAnd: lambda a, b: a & b, ast.BitOr: lambda a, b: a | b,
        ast.BitXor: lambda a, b: a ^ b}


class Module:
    def __init__(self, path):
        self.path = path
        self.name = path.stem
        self.tree = ast.parse(path.read_text())
        self.consts = {}
        self.aliases = {}  # local name -> module name (import x as y)
        for node in self.tree.body:
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name] = a.name


def build_consts(mods):
    """Module-level `NAME = const(expr)` values, folded across the image."""
    for _ in range(3):  # consts may use other modules' consts
        for m in mods.values():
            for node in m.tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    v = node.value
                    if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "const" and v.args:
                        val = value(v.args[0], m, mods)
                        if val is not None:
                            m.consts[node.targets[0].id] = val


def value(node, m, mods):
    """The integer a node stands for, when the source alone tells; else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        return m.consts.get(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        other = mods.get(m.aliases.get(node.value.id, ""))
        return other.consts.get(node.attr) if other else None
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        a, b = value(node.left, m, mods), value(node.right, m, mods)
        if a is not None and b is not None:
            try:
                return _OPS[type(node.op)](a, b)
            except (ZeroDivisionError, ValueError):
                return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Invert, ast.USub)):
        a = value(node.operand, m, mods)
        if a is not None:
            return ~a if isinstance(node.op, ast.Invert) else -a
    return None


def big(v):
    return v is not None and not SMALL_MIN <= v <= SMALL_MAX


def functions(mods):
    """name -> [(module, FunctionDef)] over the image, nested ones included."""
    out = {}
    for m in mods.values():
        for node in ast.walk(m.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.setdefault(node.name, []).append((m, node))
    return out


def roots(mods, funcs):
    """(module, node) pairs that run in a hard IRQ or with interrupts masked."""
    out = []
    for m in mods.values():
        for node in ast.walk(m.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "irq" \
                    and node.args:
                h = node.args[0]
                if isinstance(h, ast.Attribute):
                    out += funcs.get(h.attr, [])
                elif isinstance(h, ast.Name):
                    out += funcs.get(h.id, [])
                elif isinstance(h, ast.Call) and isinstance(h.func, ast.Attribute):
                    for fm, f in funcs.get(h.func.attr, []):
                        out += [(fm, n) for n in ast.walk(f) if n is not f and isinstance(n, ast.FunctionDef)]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                masked = False
                for stmt in node.body:
                    if masked and isinstance(stmt, ast.Try):
                        out += [(m, s) for s in stmt.body]
                        masked = False
                    masked = masked or any(isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                                           and c.func.attr == "disable_irq" for c in ast.walk(stmt))
    return out


def lint(board):
    mods = {}
    for p in sources(board):
        mods[p.stem] = Module(p)
    build_consts(mods)
    funcs = functions(mods)
    todo = roots(mods, funcs)
    seen = set()
    found = []
    while todo:
        m, node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for n in ast.walk(node):
            if isinstance(n, ast.Call):
                name = n.func.attr if isinstance(n.func, ast.Attribute) else \
                    n.func.id if isinstance(n.func, ast.Name) else None
                todo += funcs.get(name, [])
            operands = []
            if isinstance(n, ast.BinOp):
                operands = [n.left, n.right, n]
            elif isinstance(n, ast.AugAssign):
                operands = [n.value]
            elif isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Invert):
                operands = [n.operand, n]
            for o in operands:
                v = value(o, m, mods)
                if big(v):
                    where = m.path.relative_to(ROOT) if m.path.is_relative_to(ROOT) else m.path
                    found.append("%s:%d: %s makes a big int (0x%x) where the heap must not be touched"
                                 % (where, n.lineno, ast.unparse(n), v & 0xFFFFFFFF))
                    break
    return sorted(set(found))


def main(argv):
    if len(argv) != 1:
        print("usage: python boards/tests/irqlint.py BOARD", file=sys.stderr)
        return 2
    found = lint(argv[0])
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
