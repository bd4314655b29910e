"""Importing this module registers every built-in component (see nasrepro.catalog)."""

import nasrepro.datasets  # noqa: F401
import nasrepro.datasets.imagenet  # noqa: F401
import nasrepro.evaluate.complexity  # noqa: F401
import nasrepro.evaluate.nb201  # noqa: F401
import nasrepro.evaluate.retrain  # noqa: F401
import nasrepro.methods.darts  # noqa: F401
import nasrepro.methods.darts_minus  # noqa: F401
import nasrepro.methods.exchanged_lr  # noqa: F401
import nasrepro.methods.fix_alpha  # noqa: F401
import nasrepro.methods.lambda_darts  # noqa: F401
import nasrepro.methods.pc_darts  # noqa: F401
import nasrepro.methods.random_features  # noqa: F401
import nasrepro.methods.robust_darts  # noqa: F401
import nasrepro.methods.sampled_paths  # noqa: F401
import nasrepro.methods.sdarts  # noqa: F401
import nasrepro.methods.sdarts_adv  # noqa: F401
import nasrepro.methods.stop_criteria  # noqa: F401
import nasrepro.select.argmax  # noqa: F401
import nasrepro.select.best_valid  # noqa: F401
import nasrepro.select.pt  # noqa: F401
import nasrepro.select.sampled_best  # noqa: F401
import nasrepro.select.selective_stop  # noqa: F401
import nasrepro.spaces.darts  # noqa: F401
import nasrepro.spaces.darts_ops  # noqa: F401
import nasrepro.spaces.nb201  # noqa: F401
import nasrepro.spaces.robust  # noqa: F401
