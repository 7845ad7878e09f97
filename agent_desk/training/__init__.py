"""The trainers' workbench (issue 19): from a misunderstood customer message to a better model in
production, in the desk, for the `trainer` role (and supervisors).

One module per job: `settings` (where the project and the models are), the inbox of poorly understood
messages, labelling and editing examples (the NLU YAML files stay the source of truth, each change a
git commit by the trainer), training in the background with progress, the report against the model in
production, and activating or rolling back a model in the running Rasa server(s).
"""
