"""Writes tiny synthetic copies of MedVLMBench's datasets, in their publishers' own layouts,
under tests/fixtures/datasets/<name>/ (used by tests/it/datasets.rs).

Nothing here comes from the real datasets: images are generated 8x8 pictures, questions,
answers and table rows are made up, but the file names, folder layout, column and field
names, value spellings and quirks (duplicated triplets, non-English questions, integer
answers, pickled lists of dicts) are the publishers'. Needs only numpy and Pillow.

    python tools/make_dataset_fixtures.py
"""

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "datasets"


def image(path: Path, seed: int, mode: str = "RGB", fmt: str | None = None) -> None:
    """An 8x8 picture, different for each seed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1}[mode]
    px = rng.integers(0, 256, size=(8, 8, channels), dtype=np.uint8)
    img = Image.fromarray(px[:, :, 0] if channels == 1 else px, mode)
    img.save(path, format=fmt)


def fresh(name: str) -> Path:
    d = ROOT / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def vqa_rad() -> None:
    d = fresh("vqa-rad")
    folder = d / "VQA_RAD Image Folder"
    for i in (1, 2, 3):
        image(folder / f"synpic{i}.jpg", 100 + i)

    def entry(qid, phrase, img, q, a, organ, qtype, atype):
        return {
            "qid": qid, "phrase_type": phrase, "qid_linked_id": f"link-{qid}",
            "image_case_url": f"https://medpix.nlm.nih.gov/case?id={qid}", "image_name": img,
            "image_organ": organ, "evaluation": "not evaluated", "question": q,
            "question_rephrase": "NULL", "question_relation": "NULL", "question_frame": "NULL",
            "question_type": qtype, "answer": a, "answer_type": atype,
        }

    entries = [
        # In train and in test: dropped from train.
        entry(1, "freeform", "synpic1.jpg", "Is there  a fracture ?", "Yes", "CHEST", "PRES", "CLOSED"),
        entry(2, "para", "synpic1.jpg", "Is there  a fracture ?", "Yes", "CHEST", "PRES", "CLOSED"),
        entry(3, "freeform", "synpic2.jpg", "What organ is shown?", "Liver", "ABD", "ORGAN", "OPEN"),
        entry(4, "test_freeform", "synpic1.jpg", "Is there  a fracture ?", "Yes", "CHEST", "PRES", "CLOSED"),
        # An integer answer, as the real file has.
        entry(5, "test_para", "synpic2.jpg", "How many lesions are there?", 2, "ABD", "COUNT", "OPEN"),
        entry(6, "test_freeform", "synpic3.jpg", "Is the heart enlarged?", "no", "CHEST", "SIZE", "CLOSED"),
        # A repeated test triplet: dropped.
        entry(7, "test_para", "synpic3.jpg", "Is the heart enlarged?", "no", "CHEST", "SIZE", "CLOSED"),
        entry(8, "freeform", "synpic3.jpg", "Where is the mass?", "Left  lung ", "CHEST", "POS", "OPEN"),
    ]
    (d / "VQA_RAD Dataset Public.json").write_text(json.dumps(entries, indent=4))


def slake() -> None:
    d = fresh("slake")
    for i in range(3):
        image(d / "imgs" / f"xmlab{i}" / "source.jpg", 200 + i)
    qid = iter(range(10_000))

    def entry(img, q, a, lang, atype, modality, location, content):
        return {
            "img_id": img, "img_name": f"xmlab{img}/source.jpg", "question": q, "answer": a,
            "q_lang": lang, "location": location, "modality": modality, "answer_type": atype,
            "base_type": "vqa", "content_type": content, "triple": ["vhead", "_", "_"], "qid": next(qid),
        }

    train = [
        entry(0, "Which organ is abnormal?", "Lung", "en", "OPEN", "X-Ray", "Chest", "Abnormality"),
        entry(0, "哪个器官不正常?", "肺", "zh", "OPEN", "X-Ray", "Chest", "Abnormality"),
        entry(1, "Is this a CT image?", "Yes", "en", "CLOSED", "CT", "Abdomen", "Modality"),
    ]
    validate = [entry(1, "What modality is used?", "CT", "en", "OPEN", "CT", "Abdomen", "Modality"),
                entry(1, "这是CT吗?", "是", "zh", "CLOSED", "CT", "Abdomen", "Modality")]
    test = [
        entry(2, "Where is the liver?", "Left", "en", "OPEN", "MRI", "Abdomen", "Position"),
        # CLOSED without a yes/no answer: SLAKE's own label decides, not the answer.
        entry(2, "Is the liver on the left or right?", "Left", "en", "CLOSED", "MRI", "Abdomen", "Position"),
        entry(2, "Does the picture contain kidney?", "No", "en", "CLOSED", "MRI", "Abdomen", "Organ"),
        entry(2, "肝脏在哪里?", "左", "zh", "OPEN", "MRI", "Abdomen", "Position"),
        entry(0, "How many lungs are there?", "2", "en", "OPEN", "X-Ray", "Chest", "Quantity"),
    ]
    for name, rows in [("train.json", train), ("validate.json", validate), ("test.json", test)]:
        (d / name).write_text(json.dumps(rows, ensure_ascii=False, indent=1))


def pathvqa() -> None:
    d = fresh("pathvqa") / "pvqa"
    splits = {
        "train": [("train_0000", "What is shown?", "Granuloma"), ("train_0001", "is this  normal ?", "no")],
        "val": [("val_0000", "Is there necrosis?", "Yes")],
        "test": [
            ("test_0000", "Is this  a tumor ?", "yes"),
            ("test_0000", "Is this  a tumor ?", "yes"),  # repeated triplet: dropped
            ("test_0001", "What is present?", "Necrosis"),
            ("test_0001", "does this show fibrosis?", "No"),
        ],
    }
    # Protocol 4 (Python 3's default), 2 and 0, so that the reader sees each encoding.
    protocols = {"train": 2, "val": 0, "test": 4}
    for n, (split, rows) in enumerate(splits.items()):
        for i, img in enumerate(dict.fromkeys(r[0] for r in rows)):
            image(d / "images" / split / f"{img}.jpg", 300 + 10 * n + i)
        qa = d / "qas" / split
        qa.mkdir(parents=True, exist_ok=True)
        data = [{"image": i, "question": q, "answer": a} for i, q, a in rows]
        with open(qa / f"{split}_qa.pkl", "wb") as f:
            pickle.dump(data, f, protocol=protocols[split])


def imagefolder() -> None:
    d = fresh("imagefolder")
    files = [("train", "malignant", "a.png"), ("train", "benign", "b.png"), ("train", "benign", "c.jpg"),
             ("val", "benign", "d.png"), ("test", "malignant", "e.png"), ("test", "benign", "f.png")]
    for i, (split, cls, name) in enumerate(files):
        image(d / split / cls / name, 400 + i)
    (d / "test" / "benign" / "notes.txt").write_text("not an image: skipped\n")


def csv_plugin() -> None:
    d = fresh("csv")
    (d / "classes.txt").write_text("benign\nmalignant\n")
    rows = [("images/a.png", "malignant", "train", "F", "63"), ("images/b.png", "0", "train", "M", "40"),
            ("images/c.png", "benign", "test", "F", ""), ("images/d.png", "1", "test", "M", "71")]
    for i, (path, *_rest) in enumerate(rows):
        image(d / path, 500 + i, mode="L")
    lines = ["path,label,split,sex,age"] + [",".join(r) for r in rows]
    (d / "lesions.csv").write_text("\n".join(lines) + "\n")


def vqa_jsonl() -> None:
    """The no-code VQA layout: `NAME.jsonl`, one question a line, images beside it."""
    d = fresh("vqa-jsonl")
    for i, name in enumerate(["a.png", "b.jpg", "c.png"]):
        image(d / "images" / name, 600 + i)
    rows = [
        {"id": "q1", "image": "images/a.png", "question": "Is there a fracture?", "answer": "yes",
         "kind": "closed", "split": "train", "sex": "F"},
        {"id": "q2", "image": "images/a.png", "question": "Where is the lesion?", "answer": "left lung",
         "kind": "open", "split": "validation"},
        {"id": "q3", "image": "images/b.jpg", "question": "Is the heart enlarged?", "answer": "no",
         "kind": "Closed", "split": "test", "sex": "M", "age": 71},
        {"id": "q4", "image": "images/c.png", "question": "How many nodules are there?", "answer": 2,
         "kind": "open", "split": "test", "sex": "F", "site": ""},
        {"image": "images/c.png", "question": "Is this an MRI?", "answer": "no", "kind": "closed"},
    ]
    lines = [json.dumps(r) for r in rows]
    lines.insert(3, "")  # a blank line is skipped
    (d / "chest.jsonl").write_text("\n".join(lines) + "\n")


def chexpert() -> None:
    d = fresh("chexpert") / "CheXpert-v1.0-small"
    header = ("Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,"
              "Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,"
              "Pleural Effusion,Pleural Other,Fracture,Support Devices")
    rest = ",,,,,,,,,,,,"
    # No Finding: 1.0, empty, -1.0 (uncertain), 0.0; the last three are class 0.
    rows = {
        "train": [("patient00001/study1/view1_frontal.jpg", "Female", "68", "Frontal", "AP", "1.0"),
                  ("patient00002/study2/view1_frontal.jpg", "Male", "87", "Frontal", "AP", "")],
        "valid": [("patient64541/study1/view1_frontal.jpg", "Male", "73", "Frontal", "AP", "1.0"),
                  ("patient64542/study1/view2_lateral.jpg", "Male", "70", "Lateral", "", "-1.0"),
                  ("patient64543/study1/view1_frontal.jpg", "Female", "85", "Frontal", "PA", "0.0")],
    }
    for n, (split, items) in enumerate(rows.items()):
        lines = [header]
        for i, (path, sex, age, fl, appa, nf) in enumerate(items):
            image(d / split / path, 600 + 10 * n + i, mode="L")
            lines.append(f"CheXpert-v1.0-small/{split}/{path},{sex},{age},{fl},{appa},{nf},1.0{rest}")
        (d / f"{split}.csv").write_text("\n".join(lines) + "\n")


def ham10000() -> None:
    d = fresh("ham10000")
    header = "lesion_id,image_id,dx,dx_type,age,sex,localization"
    rows = [("HAM_0000118", "ISIC_0027419", "bkl", "histo", "80.0", "male", "scalp", 1),
            ("HAM_0002730", "ISIC_0025030", "mel", "histo", "60.0", "female", "back", 1),
            ("HAM_0001466", "ISIC_0027850", "akiec", "histo", "", "unknown", "face", 2),
            ("HAM_0002761", "ISIC_0029176", "nv", "follow_up", "45.0", "male", "trunk", 2)]
    lines = [header]
    for i, (lesion, img, dx, dxt, age, sex, loc, part) in enumerate(rows):
        image(d / f"HAM10000_images_part_{part}" / f"{img}.jpg", 700 + i)
        lines.append(f"{lesion},{img},{dx},{dxt},{age},{sex},{loc}")
    (d / "HAM10000_metadata.csv").write_text("\n".join(lines) + "\n")


def camelyon17() -> None:
    d = fresh("camelyon17") / "camelyon17_v1.0"
    # WILDS's metadata.csv: an unnamed index column first, zero-padded patient numbers; the
    # `split` column is 0 (train) or 1 (id_val) and is overridden by hospital 1 (val) and 2 (test).
    rows = [(4, 4, 3328, 21792, 1, 0, 0, 0),  # train, hospital 0
            (4, 4, 3200, 22272, 0, 0, 0, 1),  # id_val: left out
            (10, 1, 1000, 2000, 0, 5, 1, 0),  # val (hospital 1, whatever `split` says)
            (61, 0, 512, 512, 0, 35, 3, 0),  # train, hospital 3
            (72, 3, 96, 192, 1, 40, 4, 0),  # train, hospital 4
            (51, 2, 640, 960, 1, 30, 2, 0),  # test (hospital 2)
            (51, 2, 672, 960, 0, 30, 2, 1)]  # test
    lines = [",patient,node,x_coord,y_coord,tumor,slide,center,split"]
    for i, (patient, node, x, y, tumor, slide, center, split) in enumerate(rows):
        folder = f"patient_{patient:03d}_node_{node}"
        image(d / "patches" / folder / f"patch_{folder}_x_{x}_y_{y}.png", 800 + i)
        lines.append(f"{i},{patient:03d},{node},{x},{y},{tumor},{slide},{center},{split}")
    (d / "metadata.csv").write_text("\n".join(lines) + "\n")


def papila() -> None:
    d = fresh("papila")
    # The workbooks saved as CSV. OD as a raw spreadsheet export: a title row, the header with
    # an unnamed id column, a second header row; OS as FairMedFM's cleaned table.
    # Diagnosis: 0 healthy, 1 glaucoma, 2 suspect (left out); Gender: 0 male, 1 female.
    od = [("#002", 47, 0, 2), ("#004", 58, 1, 1), ("#005", 89, 1, 0)]
    os_ = [("#002", 47, 0, 1), ("#004", 58, 1, 0), ("#007", 22, 1, 0)]
    raw = ["Clinical data (right eye),,,,,,,,,,,,",
           ",Age,Gender,Diagnosis,Refractive_error,,,Phakic/Pseudophakic,IOP,,Pachymetry,Axial_Length,VF_MD",
           ",,,,dioptre_1,dioptre_2,astigmatism,,Pneumatic,Perkins,,,"]
    raw += [f"{i},{age},{sex},{dx},0.75,-1.75,90,0,21,,586,23.64,-0.07" for i, age, sex, dx in od]
    cleaned = ["ID,Age,Gender,Diagnosis,dioptre_1,dioptre_2,astigmatism,Phakic/Pseudophakic,Pneumatic,"
               "Perkins,Pachymetry,Axial_Length,VF_MD"]
    cleaned += [f"{i},{age},{sex},{dx},-0.5,-1.5,88,0,20,,603,23.77,0.17" for i, age, sex, dx in os_]
    (d / "ClinicalData").mkdir(parents=True)
    (d / "ClinicalData" / "patient_data_od.csv").write_text("\n".join(raw) + "\n")
    (d / "ClinicalData" / "patient_data_os.csv").write_text("\n".join(cleaned) + "\n")
    for n, (eye, rows) in enumerate([("OD", od), ("OS", os_)]):
        for i, (pid, *_rest) in enumerate(rows):
            image(d / "FundusImages" / f"RET{pid[1:]}{eye}.jpg", 900 + 10 * n + i)


def npz(path: Path, compressed: bool, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)


def subjects(rows):
    keys = ("file", "age", "gender", "race", "language", "glaucoma", "use")
    return [dict(zip(keys, r)) for r in rows]


def summary(rows, notes: bool) -> str:
    """A `data_summary.csv` of the Harvard ophthalmology datasets."""
    cols = "filename,age,gender,race,ethnicity,language,maritalstatus"
    cols += ",note,gpt4_summary,glaucoma,use" if notes else ",glaucoma,use"
    lines = [cols]
    for r in rows:
        cells = [r["file"], r["age"], r["gender"], r["race"], "non-hispanic", r["language"], "single"]
        if notes:
            # Free text with commas and quotes, quoted as pandas writes it.
            cells += ['"pt presents for iop check, ""gl suspect"" ou"', '"The patient, 56 y/o, has glaucoma."']
        lines.append(",".join(cells + [r["glaucoma"], r["use"]]))
    return "\n".join(lines) + "\n"


def gf3300() -> None:
    d = fresh("gf3300")
    rows = subjects([("data_0001.npz", "43.31", "male", "asian", "english", "no", "training"),
                     ("data_0002.npz", "18.02", "female", "white", "english", "yes", "training"),
                     ("data_0003.npz", "66.42", "male", "black", "spanish", "yes", "validation"),
                     ("data_0004.npz", "70.64", "female", "black", "english", "yes", "test"),
                     ("data_0005.npz", "", "female", "asian", "unknown", "no", "test")])
    (d / "data_summary.csv").write_text(summary(rows, notes=False))
    folders = {"training": "Training", "validation": "Validation", "test": "Test"}
    for i, r in enumerate(rows):
        rng = np.random.default_rng(1000 + i)
        # RNFLT thickness in microns, -2 to 350; the first three values pin the scaling.
        rnflt = rng.uniform(-2, 350, size=(8, 8)).astype(np.float32)
        rnflt[0, :3] = [-2.0, 350.0, 174.0]
        npz(d / folders[r["use"]] / r["file"], compressed=i % 2 == 0, rnflt=rnflt,
            oct_bscans=rng.integers(0, 256, size=(4, 4, 4), dtype=np.uint8), md=np.float32(-1.5),
            tds=np.zeros(52, np.float32), glaucoma=int(r["glaucoma"] == "yes"), age=np.float32(40),
            male=int(r["gender"] == "male"), race=0, hispanic=0, language=0, maritalstatus=1)


def fairvlmed10k() -> None:
    d = fresh("fairvlmed10k")
    rows = subjects([("data_00001.npz", "56.56", "female", "black", "english", "yes", "training"),
                     ("data_00002.npz", "53.91", "female", "white", "english", "no", "validation"),
                     ("data_00003.npz", "46.30", "male", "asian", "spanish", "no", "test"),
                     ("data_00004.npz", "66.52", "male", "white", "other", "yes", "test")])
    # As FairMedFM found it: the summary in ReadMe/, the test files in Testing/.
    (d / "ReadMe").mkdir(parents=True)
    (d / "ReadMe" / "data_summary.csv").write_text(summary(rows, notes=True))
    folders = {"training": "Training", "validation": "Validation", "test": "Testing"}
    for i, r in enumerate(rows):
        rng = np.random.default_rng(1100 + i)
        npz(d / folders[r["use"]] / r["file"], compressed=i % 2 == 1,
            slo_fundus=rng.integers(0, 256, size=(8, 8), dtype=np.uint8), md=np.float32(-1.5),
            tds=np.zeros(52, np.float32), age=np.float32(56.5), gender=0, race=1, ethnicity=0, language=0,
            maritalstatus=1, glaucoma=int(r["glaucoma"] == "yes"), note=np.array("pt presents for iop check"))
    # MedVLMBench's own question files (not published; made up here in their columns).
    header = "image_path,question,answer,question type"
    train = [("Training/data_00001.npz", "Does the patient have glaucoma?", "yes", "CLOSED")]
    test = [("Testing/data_00004.npz", "Does the patient have glaucoma?", "yes", "CLOSED"),
            ("Testing/data_00004.npz", "What is the cup-to-disc ratio of the right eye?", "0.7", "OPEN"),
            ("Testing/data_00003.npz", "What treatment is planned?", "", "OPEN"),  # dropna: dropped
            ("Testing/data_00003.npz", "Which eye has a defect?", "None", "OPEN"),  # pandas reads None as NA
            ("Testing/data_00003.npz", "Is the optic disc cupping enlarged?", "No", "CLOSED")]
    for name, qs in [("vqa_train.csv", train), ("vqa_test.csv", test)]:
        (d / name).write_text("\n".join([header] + [",".join(q) for q in qs]) + "\n")


if __name__ == "__main__":
    chexpert()
    ham10000()
    imagefolder()
    csv_plugin()
    vqa_jsonl()
    vqa_rad()
    slake()
    pathvqa()
    camelyon17()
    papila()
    gf3300()
    fairvlmed10k()
