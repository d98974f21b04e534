"""literate: render literate Python and Markdown sources as side-by-side pages.

The flow runs one way, one module per step:

    sections      split a source into (prose, code) rows          sections.py
    prose         Markdown → HTML with placeholders = the key      prose.py
    translations  key → checked translated HTML (English otherwise) translations.py
    math          placeholders → static KaTeX HTML, cached          math.py
    page          rows of (prose | highlighted code), anchors       page.py
    site          docs dir → MkDocs Material → site/, site/<lang>/  site.py

Beside the flow: `workflow.py` is the translators' tool (`python -m literate translate …`:
update, status, check, prune, todo, PO export/import); `ui.py` the words around the prose
(the renderer's, the theme's, the site name), translated in `translations/<lang>/ui.json`;
`search.py` what the search index reads of a formula; `serve.py` the writers' live-reloading
server, which rebuilds only what changed.

It knows nothing about the project it renders: the pages, their order and the repository's
URLs come from `mkdocs.yml` (`extra.literate`, `repo_url`, `edit_uri`).
"""

from .sections import LiterateError, Section, split

__all__ = ["LiterateError", "Section", "split"]
