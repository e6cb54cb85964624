"""Task analysis: what kind of task this is, how hard, how likely it needs a frontier model, how big.

Import the module you need (`analysis.local`, `analysis.analyzers`, ...): this package imports nothing, so a
room that only needs the vocabulary (`server.domain.tasks`) never loads the rule engine.
"""
