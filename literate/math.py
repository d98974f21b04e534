"""Step 4: math → static KaTeX HTML, rendered once per formula at build time.

The site ships HTML and MathML, not TeX, so a formula reads the same with JavaScript off and a
screen reader gets MathML. All formulas of a build go to one Node process (`katex_render.js`);
results are cached by formula in a JSON file under `build/`, so a rebuild after editing one
paragraph renders only the formulas that changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from .prose import Fragment
from .sections import LiterateError

SCRIPT = Path(__file__).with_name("katex_render.js")


class Katex:
    """A cache of rendered formulas, filled by one Node run per `render_all`."""

    def __init__(self, node_modules: Path, cache_file: Path):
        self.node_modules = node_modules
        self.cache_file = cache_file
        version = json.loads((node_modules / "katex" / "package.json").read_text())["version"]
        self.version = version
        try:
            self.cache = json.loads(cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.cache = {}

    def _key(self, fragment: Fragment) -> str:
        # The KaTeX version is part of the key: a new KaTeX must re-render everything.
        text = f"{self.version}\0{int(fragment.display)}\0{fragment.text}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def render_all(self, formulas: list[tuple[str, Fragment]]) -> None:
        """Render every `(path, fragment)` not yet cached; a bad formula names its file and line."""
        missing = {}
        for path, fragment in formulas:
            missing.setdefault(self._key(fragment), (path, fragment))
        missing = {key: value for key, value in missing.items() if key not in self.cache}
        if not missing:
            return
        request = [[fragment.text, fragment.display] for _, fragment in missing.values()]
        try:
            run = subprocess.run(
                ["node", str(SCRIPT)], input=json.dumps(request), capture_output=True,
                text=True, env={**os.environ, "NODE_PATH": str(self.node_modules)}, check=False,
            )
        except FileNotFoundError:
            raise LiterateError("node", 0, "Node.js is needed to render math") from None
        if run.returncode != 0:
            raise LiterateError(str(SCRIPT), 0, f"KaTeX failed to run: {run.stderr.strip()}")
        errors = []
        results = json.loads(run.stdout)
        for (key, (path, fragment)), result in zip(missing.items(), results, strict=True):
            if "error" in result:
                errors.append((path, fragment.line, f"bad formula ${fragment.text}$: "
                                                    f"{result['error']}"))
            else:
                self.cache[key] = result["html"]
        self._save()  # keep the good ones even when one formula is bad
        if errors:
            path, line, message = errors[0]
            others = "".join(f"\n{p}:{n}: {m}" for p, n, m in errors[1:])
            raise LiterateError(path, line, message + others)

    def html(self, fragment: Fragment) -> str:
        return self.cache[self._key(fragment)]

    def _save(self) -> None:
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.cache_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.cache, sort_keys=True), encoding="utf-8")
        temporary.replace(self.cache_file)
