"""Markdown agents and the orchestration that gives them sub-goals.

- ``format``: the agent file (YAML front matter + system prompt), validated with file:line;
- ``registry``: where agents come from (packs, the workspace, the project), hot-reloaded;
- ``changes``: every change to an agent file, recorded and reversible;
- ``plugin``: ``create_agent`` / ``modify_agent`` / ``list_agents`` and the gate's rules;
- ``session``: what a run made by an agent gets (prompt, tools, model, limits);
- ``structure``: whether a goal has several distinct deliverables (ORCHESTRATOR's bid);
- ``plan``: ``run_plan``, which dispatches each sub-goal back through the router.
"""
