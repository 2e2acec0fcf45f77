"""Training data: what the model saw and said during paid runs, kept and exported.

``recorder`` keeps each LEARNER session's conversation (redacted) beside its run record;
``formats`` turns a kept conversation into an OpenAI, TRL or Anthropic example;
``training`` chooses the runs, filters them and writes the dataset with a report.
"""
