"""The full-screen terminal view (``hook ui``, ``hook listen --ui``), built on Textual.

``model.py`` is the view's data (no Textual, no I/O); ``feed.py`` fills it from the relay or a
running listener and replays through ``replay.py``; ``app.py`` (Events), ``details.py``,
``issues.py`` and ``help.py`` are the screens. Only ``cli/ui.py`` and ``cli/listen.py --ui``
import this package, inside their commands, so ``hook --version`` never loads Textual.
"""
