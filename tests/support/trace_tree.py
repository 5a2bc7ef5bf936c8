"""Render received spans as a readable tree, for failure messages, the demo and debugging.

Why: "expected 3 spans, got 2" says little; a tree that shows which span nests under which, with
status, tokens and ``custom_id``, makes a broken parent link or a missing completion obvious.
Works on any list of :class:`~tests.support.otlp_receiver.ReceivedSpan` (e.g. ``rx.spans``).

Example output::

    trace 0af7651916cd43dd8448eb211c80319c (3 spans)
    └─ batch_results [INTERNAL] OK 1.20s
       ├─ chat gpt-4o-mini [CLIENT] OK 812ms in=12 out=40 custom_id=req-1
       └─ chat gpt-4o-mini [CLIENT] ERROR (rate_limit_exceeded) 3ms custom_id=req-2
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from tests.support.otlp_receiver import ReceivedSpan

__all__ = ["format_duration", "format_span", "render_trace_tree"]

_TEE, _ELBOW, _PIPE, _GAP = "├─ ", "└─ ", "│  ", "   "


def format_duration(ns: int) -> str:
    """Human duration: ``850ns``, ``12.3ms``, ``1.20s``, ``3m05s``; negative values kept visible."""
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000:
        text = f"{ns}ns"
    elif ns < 1_000_000:
        text = f"{ns / 1_000:.1f}µs"
    elif ns < 1_000_000_000:
        text = f"{ns / 1_000_000:.1f}ms"
    elif ns < 60 * 1_000_000_000:
        text = f"{ns / 1_000_000_000:.2f}s"
    else:
        minutes, seconds = divmod(ns // 1_000_000_000, 60)
        text = f"{minutes}m{seconds:02d}s"
    return sign + text


def format_span(span: ReceivedSpan) -> str:
    """One line: name, kind, status (with ``error.type``), duration, tokens, ``custom_id``."""
    parts = [span.name or "(unnamed)", f"[{span.kind}]"]
    status = span.status_code
    error_type = span.attributes.get("error.type")
    if status == "ERROR" or error_type is not None:
        status = f"{status} ({error_type})" if error_type is not None else status
    parts.append(status)
    parts.append(format_duration(span.duration_ns))
    tokens_in = span.attributes.get("gen_ai.usage.input_tokens")
    tokens_out = span.attributes.get("gen_ai.usage.output_tokens")
    if tokens_in is not None or tokens_out is not None:
        shown_in = "-" if tokens_in is None else tokens_in
        shown_out = "-" if tokens_out is None else tokens_out
        parts.append(f"in={shown_in} out={shown_out}")
    custom_id = span.attributes.get("batchtrace.custom_id")
    if custom_id is not None:
        parts.append(f"custom_id={custom_id}")
    return " ".join(parts)


def _sort_key(span: ReceivedSpan) -> tuple[int, str, str]:
    return (span.start_ns, span.name, span.span_id)


def render_trace_tree(spans: Sequence[ReceivedSpan], max_children: int = 50) -> str:
    """A tree per trace id (traces ordered by first start), children under their parents.

    Spans whose parent is not in ``spans`` hang under a ``(parent <id> not in this export)`` line,
    which is what a batch linked into an existing trace looks like. Siblings are sorted by start
    time, then name. A parent with more than ``max_children`` children shows the first ones and
    ``… and N more``, so a 50,000-span batch still renders in a screenful. A span id sent twice
    is shown twice, the repeat marked ``(duplicate span id)``: duplicates are a bug worth seeing.
    Rendering is iterative, so deep or cyclic (malformed) parent chains cannot blow the stack.
    """
    if not spans:
        return "(no spans)"
    by_trace: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    ordered = sorted(by_trace.items(), key=lambda item: (min(s.start_ns for s in item[1]), item[0]))
    lines: list[str] = []
    for trace_id, trace_spans in ordered:
        lines.append(f"trace {trace_id} ({len(trace_spans)} span{'s' if len(trace_spans) != 1 else ''})")
        lines.extend(_render_one_trace(trace_spans, max_children))
    return "\n".join(lines)


# A node to render: either a span, or a synthetic "(parent … not in this export)" line whose
# children are the orphans; `str` for the latter.
_Node = ReceivedSpan | str


def _render_one_trace(spans: list[ReceivedSpan], max_children: int) -> list[str]:
    ids = {s.span_id for s in spans}
    children: dict[str, list[ReceivedSpan]] = defaultdict(list)
    roots: list[_Node] = []
    orphan_groups: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        parent = span.parent_span_id
        if parent is None:
            roots.append(span)
        elif parent in ids and parent != span.span_id:
            children[parent].append(span)
        else:
            orphan_groups[parent].append(span)
    for group in children.values():
        group.sort(key=_sort_key)
    for parent_id, group in orphan_groups.items():
        group.sort(key=_sort_key)
        children[f"missing:{parent_id}"] = group
        roots.append(f"missing:{parent_id}")

    def root_key(node: _Node) -> tuple[int, str, str]:
        if isinstance(node, str):
            return _sort_key(children[node][0])
        return _sort_key(node)

    roots.sort(key=root_key)

    lines: list[str] = []
    rendered: set[str] = set()  # span ids whose children were already expanded
    # Explicit stack of (siblings, prefix, next index); each step emits one line.
    stack: list[tuple[Sequence[_Node], str, int]] = [(roots, "", 0)]
    while stack:
        nodes, prefix, i = stack.pop()
        if i >= min(len(nodes), max_children):
            if len(nodes) > max_children:
                lines.append(f"{prefix}{_ELBOW}… and {len(nodes) - max_children} more")
            continue
        last = i == len(nodes) - 1
        connector = _ELBOW if last else _TEE
        child_prefix = prefix + (_GAP if last else _PIPE)
        stack.append((nodes, prefix, i + 1))
        node = nodes[i]
        if isinstance(node, str):
            lines.append(f"{prefix}{connector}(parent {node.removeprefix('missing:')} not in this export)")
            stack.append((children[node], child_prefix, 0))
            continue
        if node.span_id in rendered:
            lines.append(f"{prefix}{connector}{format_span(node)} (duplicate span id {node.span_id})")
            continue
        rendered.add(node.span_id)
        lines.append(f"{prefix}{connector}{format_span(node)}")
        kids = children.get(node.span_id)
        if kids:
            stack.append((kids, child_prefix, 0))

    # Spans in a parent cycle (a -> b -> a) hang under no root; list them rather than lose them.
    reachable = _reachable_ids(roots, children)
    cyclic = sorted((s for s in spans if s.span_id not in reachable), key=_sort_key)
    if cyclic:
        lines.append(f"(parent cycle: {len(cyclic)} span{'s' if len(cyclic) != 1 else ''})")
        lines.extend(f"{_GAP}{format_span(s)} span={s.span_id} parent={s.parent_span_id}" for s in cyclic)
    return lines


def _reachable_ids(roots: Sequence[_Node], children: dict[str, list[ReceivedSpan]]) -> set[str]:
    """Span ids reachable from the roots, ignoring collapsing (collapsed spans are not lost)."""
    seen: set[str] = set()
    todo: list[_Node] = list(roots)
    while todo:
        node = todo.pop()
        if isinstance(node, str):
            todo.extend(children[node])
        elif node.span_id not in seen:
            seen.add(node.span_id)
            todo.extend(children.get(node.span_id, ()))
    return seen
