-- A results.sqlite written by actlab 0.1.0 (git main at a1126cb):
-- actlab compare --dataset iris --activations relu,tanh --seeds 3 --epochs 2 --width 8
BEGIN TRANSACTION;
CREATE TABLE checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL,
    blob BLOB NOT NULL
);
CREATE TABLE epochs (
    model_id INTEGER NOT NULL REFERENCES models(id),
    epoch INTEGER NOT NULL,            -- 1-based
    train_loss REAL,
    val_loss REAL,
    metrics TEXT NOT NULL,             -- JSON object
    grad_norms TEXT NOT NULL,          -- JSON list, per weight layer
    dead_fraction TEXT NOT NULL,       -- JSON list, per hidden layer
    saturated_fraction TEXT NOT NULL,  -- JSON list, per hidden layer
    diverged INTEGER NOT NULL,
    seconds REAL,
    PRIMARY KEY (model_id, epoch)
);
INSERT INTO "epochs" VALUES(0,1,0.909569263458252,9.54827010631561279296e-01,'{"val_accuracy": 0.4333333373069763, "val_macro_f1": 0.36106395721435547}','[0.19844216108322144, 0.6639759540557861, 0.8333908319473267]','[0.0, 0.0]','[NaN, NaN]',0,4.30681749999924524258e-03);
INSERT INTO "epochs" VALUES(1,1,9.58880186080932617187e-01,9.80956792831420898437e-01,'{"val_accuracy": 0.6000000238418579, "val_macro_f1": 0.6001031994819641}','[0.2517217993736267, 0.42704838514328003, 0.5495941638946533]','[0.0, 0.125]','[NaN, NaN]',0,4.30681749999924524258e-03);
INSERT INTO "epochs" VALUES(2,1,8.58012557029724121093e-01,8.63074958324432373046e-01,'{"val_accuracy": 0.4333333373069763, "val_macro_f1": 0.3850877285003662}','[0.27800872921943665, 0.9430642127990723, 1.4447605609893799]','[0.0, 0.125]','[NaN, NaN]',0,4.30681749999924524258e-03);
INSERT INTO "epochs" VALUES(3,1,1.32156252861022949218e+00,1.28807711601257324218e+00,'{"val_accuracy": 0.03333333507180214, "val_macro_f1": 0.03921568766236305}','[0.6118066310882568, 0.6923729181289673, 0.8361135125160217]','[0.0, 0.0]','[0.0, 0.0]',0,4.30681749999924524258e-03);
INSERT INTO "epochs" VALUES(4,1,1.0868650674819946289e+00,1.09251606464385986328e+00,'{"val_accuracy": 0.36666667461395264, "val_macro_f1": 0.31379732489585876}','[0.6059534549713135, 0.6668000221252441, 0.42599576711654663]','[0.0, 0.0]','[0.0, 0.0]',0,4.30681749999924524258e-03);
INSERT INTO "epochs" VALUES(5,1,1.14429688453674316406e+00,1.09316420555114746093e+00,'{"val_accuracy": 0.5, "val_macro_f1": 0.42568543553352356}','[0.4590625762939453, 0.6182401180267334, 0.4450500011444092]','[0.0, 0.0]','[0.0, 0.0]',0,4.30681749999924524258e-03);
INSERT INTO "epochs" VALUES(0,2,8.93928349018096923828e-01,0.94047611951828,'{"val_accuracy": 0.4333333373069763, "val_macro_f1": 0.36106395721435547}','[0.19379782676696777, 0.659193754196167, 0.8159643411636353]','[0.0, 0.0]','[NaN, NaN]',0,2.72360500000938055356e-03);
INSERT INTO "epochs" VALUES(1,2,9.50470089912414550781e-01,9.71964240074157714843e-01,'{"val_accuracy": 0.6333333253860474, "val_macro_f1": 0.6248934268951416}','[0.2407808154821396, 0.4132136106491089, 0.5247645974159241]','[0.0, 0.125]','[NaN, NaN]',0,2.72360500000938055356e-03);
INSERT INTO "epochs" VALUES(2,2,0.838811457157135,8.42942178249359130859e-01,'{"val_accuracy": 0.46666666865348816, "val_macro_f1": 0.42135077714920044}','[0.25899815559387207, 0.9032979011535645, 1.4008500576019287]','[0.0, 0.125]','[NaN, NaN]',0,2.72360500000938055356e-03);
INSERT INTO "epochs" VALUES(3,2,1.30309295654296875e+00,1.26867723464965820312e+00,'{"val_accuracy": 0.10000000149011612, "val_macro_f1": 0.10526315867900848}','[0.602021336555481, 0.6867703199386597, 0.8241854906082153]','[0.0, 0.0]','[0.0, 0.0]',0,2.72360500000938055356e-03);
INSERT INTO "epochs" VALUES(4,2,1.0653133392333984375e+00,1.07551229000091552734e+00,'{"val_accuracy": 0.36666667461395264, "val_macro_f1": 0.31379732489585876}','[0.5842134952545166, 0.6428695917129517, 0.4141990840435028]','[0.0, 0.0]','[0.0, 0.0]',0,2.72360500000938055356e-03);
INSERT INTO "epochs" VALUES(5,2,1.12968552112579345703e+00,1.0799146890640258789e+00,'{"val_accuracy": 0.5, "val_macro_f1": 0.42568543553352356}','[0.4532296657562256, 0.6115043759346008, 0.4398916959762573]','[0.0, 0.0]','[0.0, 0.0]',0,2.72360500000938055356e-03);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO "meta" VALUES('schema_version','1');
INSERT INTO "meta" VALUES('config','{"data": {"dataset": "iris", "csv": null, "target": null, "task": null, "noise": null, "val_fraction": 0.2, "split_seed": 0}, "activations": ["relu", "tanh"], "seeds": 3, "train": {"depth": 2, "width": 8, "epochs": 2, "batch_size": 64, "lr": 0.001, "optimizer": "adam", "weight_decay": 0.0, "init": "auto", "model": null}}');
INSERT INTO "meta" VALUES('fingerprint','"f05ebb3213ccd2f5b53bf58822ed2f64ec8525a6a5655068508b09d295ff3e1e"');
INSERT INTO "meta" VALUES('data','{"name": "iris", "task": "classification", "target": "class", "n_train": 120, "n_val": 30, "n_features": 4, "feature_names": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"], "class_names": ["setosa", "versicolor", "virginica"], "n_classes": 3, "target_mean": 0.0, "target_scale": 1.0}');
INSERT INTO "meta" VALUES('versions','{"python": "3.11.7", "numpy": "2.4.6", "torch": "2.13.0+cpu", "scipy": "1.17.1", "scikit-learn": "1.9.1", "actlab": "0.1.0", "platform": "Linux x86_64"}');
INSERT INTO "meta" VALUES('command','"actlab compare --dataset iris --activations relu tanh --seeds 3 --depth 2 --width 8 --epochs 2 --batch-size 64 --lr 0.001 --optimizer adam --weight-decay 0.0 --init auto --val-fraction 0.2 --split-seed 0 --out /tmp/h9-old"');
INSERT INTO "meta" VALUES('created','1796153467.407947');
CREATE TABLE models (
    id INTEGER PRIMARY KEY,            -- 0-based index in the run's job list
    activation TEXT NOT NULL,          -- canonical spec string
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,              -- running | done | diverged
    epochs_done INTEGER NOT NULL DEFAULT 0,
    diverged_epoch INTEGER,
    UNIQUE (activation, seed)
);
INSERT INTO "models" VALUES(0,'relu',0,'done',2,NULL);
INSERT INTO "models" VALUES(1,'relu',1,'done',2,NULL);
INSERT INTO "models" VALUES(2,'relu',2,'done',2,NULL);
INSERT INTO "models" VALUES(3,'tanh',0,'done',2,NULL);
INSERT INTO "models" VALUES(4,'tanh',1,'done',2,NULL);
INSERT INTO "models" VALUES(5,'tanh',2,'done',2,NULL);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    outcome TEXT,                      -- complete | stopped | interrupted | failed
    versions TEXT NOT NULL
);
INSERT INTO "sessions" VALUES(1,1.79615346741625118258e+09,1.79615347286787581447e+09,'complete','{"python": "3.11.7", "numpy": "2.4.6", "torch": "2.13.0+cpu", "scipy": "1.17.1", "scikit-learn": "1.9.1", "actlab": "0.1.0", "platform": "Linux x86_64"}');
COMMIT;
