"""llmos-robo: natural-language control of a robot arm, with safety in depth.

Tools ``robot_*``, a ``[robo]`` config section, a ``llmos_pre_tool_use`` safety hook, a
durable emergency stop, ``llmos robo`` commands (``serve``, ``reset``) and two markdown
agents, all registered through the ``llmos`` entry point (``llmos_robo.plugin``). Robot
drivers are chosen by name through the stevedore namespace ``llmos_robo.drivers``; the
pack ships the ``pybullet`` driver. Nothing heavy is imported until a robot tool runs.
"""

__version__ = "0.1.0"
