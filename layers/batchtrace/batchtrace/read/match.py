"""Pair every result with its request, in whatever order the results come, and count as we go.

The index holds the requests by id (offsets, not parsed objects); the results stream past once.
Each pair becomes a work item of raw bytes and offsets, so the process that builds spans parses
each line itself and nothing large crosses a pipe. Requests no result was paired with come
last, as items without a result. Formats that carry the request inside each result line
(Bedrock, Vertex AI) need no index: every result line is an item of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from batchtrace.plan import FormatChoice
from batchtrace.read.jsonl import MalformedLines, Readable, iter_raw_lines, parse_object
from batchtrace.read.request_index import RequestIndex
from batchtrace.tally import Tally

#: ``(request's index entry or None, result line or None, per-request id, occurrence of that id)``.
WorkItem = tuple[int | None, bytes | None, str, int]


class Matcher:
    """Streams result files against an index; counts duplicates and malformed lines into a tally."""

    def __init__(self, index: RequestIndex, choice: FormatChoice, tally: Tally) -> None:
        self.index = index
        self.choice = choice
        self.tally = tally
        self._seen: dict[str, int] = {}
        self.malformed_files: list[MalformedLines] = [index.malformed]

    def _occurrence(self, custom_id: str) -> int:
        occurrence = self._seen.get(custom_id, 0)
        self._seen[custom_id] = occurrence + 1
        return occurrence

    def _result_id(self, line: bytes, line_no: int) -> tuple[str | None, str]:
        obj, reason = parse_object(line)
        if obj is None:
            return None, reason
        self.choice.refine(obj)
        adapter = self.choice.current
        custom_id = adapter.result_id(obj, line_no)
        return custom_id, "" if custom_id else f"not a result line of the {adapter.name} format"

    def results(self, name: str, stream: Readable) -> Iterator[WorkItem]:
        """The items of one result file (the output, then the error file)."""
        malformed = MalformedLines(name)
        self.malformed_files.append(malformed)
        self_contained = self.choice.current.self_contained
        for line_no, _, line in iter_raw_lines(stream):
            custom_id, reason = self._result_id(line, line_no)
            if custom_id is None:
                malformed.add(line_no, reason)
                continue
            occurrence = self._occurrence(custom_id)
            self.tally.duplicate_ids += occurrence > 0
            entry = None if self_contained else self.index.take_entry(custom_id)
            self.tally.results += 1
            # A line that carries its own request (Bedrock, Vertex AI) is a request too.
            self.tally.requests += self_contained
            self.tally.orphan_results += entry is None and not self_contained
            yield entry, line, custom_id, occurrence

    def unanswered(self) -> Iterator[WorkItem]:
        """An item for every request no result was paired with, in input order."""
        for entry, custom_id in self.index.remaining():
            self.tally.no_result += 1
            yield entry, None, custom_id, self._occurrence(custom_id)

    def items(self, result_streams: Sequence[tuple[str, Readable]]) -> Iterator[WorkItem]:
        for name, stream in result_streams:
            yield from self.results(name, stream)
        yield from self.unanswered()

    def count_malformed(self) -> None:
        """Move the malformed-line counts of every file into the tally (after the last item)."""
        for malformed in self.malformed_files:
            self.tally.malformed_lines += malformed.count
            if malformed.count:  # added to what the workers found (a request line broken past its id)
                by_file = self.tally.malformed_by_file
                by_file[malformed.file] = by_file.get(malformed.file, 0) + malformed.count
