# cskh-assistant: every target bootstraps the environments first (cached outside the clone).
# Two environments (docs/deploy.md, "Supported runtimes"): .venv (Python 3.10: Rasa, action server,
# trainer) and .venv-svc (Python 3.13/3.12: signing service, desk, notifier; devstack starts each
# process with its own environment's interpreter).
PY := .venv/bin/python
SVC_PY := $(CURDIR)/.venv-svc/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: setup run test train shell lint format types validate nlu-report journeys crossval review import-nlu export-nlu telegram-poll run-scaled bench clean

setup:
	@scripts/bootstrap.sh

run: setup  ## run the whole assistant on embedded defaults (SQLite, in-memory stores)
	$(PY) -m devstack.run

test: setup  ## run every test: parallel groups (scripts/test_groups.py), the service group on .venv-svc; PYTEST_ARGS go to each
	$(PY) -m scripts.test_groups --python service=$(SVC_PY) -- $(PYTEST_ARGS)

train: setup  ## train the Rasa model if its data changed (FORCE=1 to retrain, FINETUNE=1 to fine-tune)
	$(PY) -m devstack.model $(if $(FORCE),--force) $(if $(FINETUNE),--finetune)

shell: setup  ## talk to the bot in the terminal (signing service and actions started for you)
	$(PY) -m devstack.shell

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# mypy twice, each side against the environment it runs on (pyproject.toml [tool.mypy]): the Rasa side
# (its `files`) on .venv, then the services and what runs with them (dev TSA) on .venv-svc.
SVC_TYPES := signing_service agent_desk notifier common devstack/tsa.py
types: setup
	$(PY) -m mypy
	$(SVC_PY) -m mypy --python-version 3.13 $(SVC_TYPES)

clean:
	rm -rf var models .pytest_cache .mypy_cache .ruff_cache

run-scaled: setup  ## production topology on this machine: nginx, 2 Rasa (Redis locks, PostgreSQL trackers, RabbitMQ events), 2 action servers, 2 signing replicas on PostgreSQL
	$(PY) -m devstack.scaled $(if $(WORKERS),--workers $(WORKERS)) $(if $(RASA),--rasa $(RASA))

telegram-poll: setup  ## development: relay Telegram updates (long polling) to the local Rasa webhook
	$(PY) -m connectors.telegram.poll

.PHONY: telegram-set-webhook
telegram-set-webhook: setup  ## register the Telegram webhook (URL=https://host/webhooks/telegram/webhook)
	$(PY) -m connectors.telegram.setup_webhook $(if $(URL),--url $(URL))

# ---- trainer workflow (docs/trainer-guide.vi.md) ----
validate: setup  ## check the NLU data: rasa data validate + duplicates, conflicts, codes, NFC (file:line)
	$(PY) -m trainer validate

nlu-report: setup  ## train/reuse the NLU model, test on tests/nlu (+ no-diacritics copy), write reports/nlu/ (FINETUNE=1)
	$(PY) -m trainer report $(if $(FINETUNE),--finetune)

journeys: setup  ## replay the customer journeys (tests/journeys/*.yml) against a running `make run`; prints the success rate
	$(PY) -m tests.journeys.replay $(if $(JSON),--json "$(JSON)")

crossval: setup  ## 3-fold cross-validation of the NLU data (slow; FOLDS=n)
	$(PY) -m trainer crossval --folds $(or $(FOLDS),3)

review: setup  ## export poorly understood customer messages to reports/review.csv (DB=path-or-URL)
	$(PY) -m trainer review $(if $(DB),--db "$(DB)") $(if $(OUT),--out "$(OUT)")

import-nlu: setup  ## import a labelled CSV: make import-nlu FILE=reports/review.csv
	@test -n "$(FILE)" || { echo "Cần FILE=...: make import-nlu FILE=reports/review.csv" >&2; exit 2; }
	$(PY) -m trainer import "$(FILE)"

export-nlu: setup  ## export all NLU examples to reports/nlu-data.csv (OUT=...)
	$(PY) -m trainer export $(if $(OUT),--out "$(OUT)")

.PHONY: purge
purge: setup  ## delete conversations idle for CONVERSATION_RETENTION_DAYS (default 180; DAYS=n, DRY=1)
	$(PY) -m deploy.purge_conversations $(if $(DAYS),--days $(DAYS)) $(if $(DRY),--dry-run)

# ---- agent desk (docs/agent-desk.md) ----
.PHONY: desk-user
desk-user: setup  ## create an agent desk account: make desk-user NAME=lan ROLE=agent|supervisor|trainer DISPLAY="Lan" (password prompted, or on stdin)
	@test -n "$(NAME)" || { echo "NAME=... required: make desk-user NAME=lan ROLE=agent DISPLAY='Lan'" >&2; exit 2; }
	$(PY) -m agent_desk.users add "$(NAME)" --role $(or $(ROLE),agent) $(if $(DISPLAY),--display-name "$(DISPLAY)")
