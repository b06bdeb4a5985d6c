"""Model families, tasks and the model registry.

Each family is one module that registers itself (:func:`physnn.models.registry.register`);
each task kind beyond classification and regression registers its class
(:func:`physnn.models.tasks.register_task`). The registry imports every module
of this package on first use, so adding a model is adding one file.
"""
