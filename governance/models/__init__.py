"""What ``train`` writes and the audits read: architectures, the model folder, handles, preprocessing.

Nothing here imports ``governance.train`` or ``governance.audit``: an audit loads a model through
this package and never needs the trainer.
"""
