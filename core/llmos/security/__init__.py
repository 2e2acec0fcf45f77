"""Layered, fail-closed security: shell policy, path resolution, URL checks, OS sandbox.

A library with no dependency on the rest of the kernel:

* ``verdict``  -- ``Verdict(decision, rule, reason)`` and ``combine`` (deny > ask > allow).
* ``shell``    -- ``analyze_command(command, *, sandboxed, workspace, cwd, protected)`` on
  the real Bash grammar; ``explain_command`` lists every finding.
* ``paths``    -- ``resolve_beneath(workspace, path)`` (openat2 RESOLVE_BENEATH or an
  O_PATH walk), ``PathDenied``, ``check_path_tool(tool, input, workspace)``.
* ``urls``     -- ``check_url(url, *, allowed_hosts, denied_hosts, allow_private)``.
* ``protected`` -- llmos's own state (config, ``.llmos/``, memory, generated plugins, git
  hooks and config, rc files): the one list every enforcement point reads.
* ``sandbox``  -- ``available()`` and ``run_sandboxed(...)`` with bubblewrap or Landlock.
* ``bounded``  -- streaming head+tail capture, timeouts that kill the process group,
  resource limits.
* ``rules``    -- ``rules()`` and ``check_rule_examples()`` for every rule above.
* ``secrets``  -- what counts as a secret variable or path; ``scrub_env``.

Modules are imported on demand so that importing the package stays cheap.
"""
