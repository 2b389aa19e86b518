"""Where the papers' equations and their released code disagree: one entry per disagreement, the official code
it comes from (a citation: repository, file and function; no code is copied), the setting that switches it,
which variant the default uses and the runs that measure its effect on our world (code run vs variant run).

Read against the official snapshots by the ICE/ISE audit (``chenhao2345/ICE``, ``alibaba/cluster-contrast-reid``,
``zhangxinyu-xyz/ISE-ReID``); the ICE entries were re-checked against ``ice/trainers.py`` here, the GCL+ entries
against ``chenhao2345/GCL-extended`` ``gcl/trainer.py``. CANU's own code is not public: its entries are where the
CANU paper and the released code of its baselines (``OasisYang/SSG``, ``yxgeee/MMT``) disagree.
"""

ICE_CODE_RUN = "ice_aware_full_market"
GCL_CODE_RUN = "gclp_fu_m_full"       # GCL+ on the Market stand-in, fully unsupervised (Table 6a, Rotation+D-Mixup)

DISAGREEMENTS = [
    {"paper": "ice", "id": "agnostic", "setting": "ice.agnostic",
     "paper_says": "Eq. 5: softmax over f·p_a / τ_a (our reading: cosine, as in Eq. 7 and 9-11)",
     "code_does": "raw train-mode BN-neck feature · un-normalised mean of the momentum features / τ_a, "
                  "label smoothing 0.1",
     "cite": "chenhao2345/ICE ice/trainers.py ImageTrainer.train (p_out_t1, CrossEntropyLabelSmooth); "
             "examples/unsupervised_train.py (centers)",
     "default": "code (the camera-agnostic rows of Table 4b: paper, τ_a 0.1 on the CPU stand-ins; no code exists "
                "for them, ICE issue #4, and the code's form breaks down alone, issue #14)",
     "runs": (ICE_CODE_RUN, "ice_fid_agnostic_market")},
    {"paper": "ice", "id": "cross", "setting": "ice.cross",
     "paper_says": "Eq. 7: one softmax per other-camera positive proxy against the 50 nearest negatives, averaged",
     "code_does": "per camera in the batch, the mean over its samples of one softmax over all the cluster's "
                  "proxies (own camera included, 1/|P| targets) and 50 negatives, summed over the cameras",
     "cite": "chenhao2345/ICE ice/trainers.py ImageTrainer.train (loss_cam, associate_loss)",
     "default": "code", "runs": (ICE_CODE_RUN, "ice_fid_cross_market")},
    {"paper": "ice", "id": "proxy_norm", "setting": "ice.proxy_norm",
     "paper_says": "Eq. 7: f · p / τ_c with unit camera-aware proxies (a cosine)",
     "code_does": "F.normalize(percam_tempV.t()): F.normalize's default dim=1 on the d × P transpose scales each "
                  "feature dimension to unit length across the P proxies, not each proxy",
     "cite": "chenhao2345/ICE ice/trainers.py ImageTrainer.train (target_inputs); examples/unsupervised_train.py "
             "(intra_id_features)",
     "default": "code (not measured alone: the all-paper twins include it; with 180 proxies and d 512 the logits "
                "scale by about √(d/P))", "runs": None},
    {"paper": "ice", "id": "cross_negatives", "setting": "ice.cross_negatives",
     "paper_says": "Eq. 7: the 50 nearest proxies of other clusters (no rule when there are fewer: ours, each "
                   "sample's min(50, others))",
     "code_does": "the last 50 of a sort over all proxies with the own cluster's pushed to the bottom: with fewer "
                  "than 50 others, own proxies come back in as negatives",
     "cite": "chenhao2345/ICE ice/trainers.py ImageTrainer.train (temp_sims, sel_ind, bg_knn)",
     "default": "code (not measured: it acts only below 50 + |own| proxies, which no default run has)",
     "runs": None},
    {"paper": "ice", "id": "kl", "setting": "ice.kl",
     "paper_says": "Eq. 12: D_KL(P ‖ Q)",
     "code_does": "nn.KLDivLoss(log P, Q) = D_KL(Q ‖ P)",
     "cite": "chenhao2345/ICE ice/trainers.py ImageTrainer.__init__ (self.kl) and .train (loss_kl)",
     "default": "code", "runs": (ICE_CODE_RUN, "ice_fid_kl_market")},
    {"paper": "ice", "id": "target", "setting": "ice.target",
     "paper_says": "Table 1: momentum targets m of the strong view (the same augmented image as the online input)",
     "code_does": "m from a second, independent strong augmentation (img_mutual) for L_h.ins and P",
     "cite": "chenhao2345/ICE ice/trainers.py ImageTrainer.train (f_out_t2_ema); ice/utils/data/preprocessor.py",
     "default": "code", "runs": (ICE_CODE_RUN, "ice_fid_target_market")},
    {"paper": "ice", "id": "ema_bn", "setting": "ice.ema_bn",
     "paper_says": "not specified (our reading: the momentum encoder in eval mode, BN statistics averaged)",
     "code_does": "momentum encoder in train mode (batch-statistic BN, ShuffleBN: a no-op on one device), EMA of "
                  "the parameters only",
     "cite": "chenhao2345/ICE ice/trainers.py ImageTrainer.train (model_1_ema.train(), get_shuffle_ids) and "
             "_update_ema_variables",
     "default": "code", "runs": (ICE_CODE_RUN, "ice_fid_ema_bn_market")},
    {"paper": "ice", "id": "sampler", "setting": "ice.loop.cross_camera",
     "paper_says": "a random identity sampler",
     "code_does": "MoreCameraSampler: an identity's images from different cameras first",
     "cite": "chenhao2345/ICE examples/unsupervised_train.py (sampler); ice/utils/data/sampler.py",
     "default": "code (cross_camera: true)", "runs": (ICE_CODE_RUN, "ice_fid_sampler_market")},
    {"paper": "ice", "id": "all", "setting": "ice.fidelity",
     "paper_says": "every ICE disagreement above read as the paper writes it",
     "code_does": "every ICE disagreement above as the official code computes it",
     "cite": "as above", "default": "code",
     "runs": [("ice_aware_full_market", "ice_fid_paper_market"), ("ice_aware_full_duke", "ice_fid_paper_duke"),
              ("ice_aware_full_msmt", "ice_fid_paper_msmt")]},
    {"paper": "ice", "id": "erasing_blur", "setting": None,
     "paper_says": "random erasing and Gaussian blur (no parameters given)",
     "code_does": "random erasing p 0.6; PIL blur radius in [0.1, 2]",
     "cite": "chenhao2345/ICE examples/unsupervised_train.py (transforms); ice/utils/data/transforms.py",
     "default": "ours: erasing p 0.5, a 3-tap Gaussian blur σ in [0.1, 2] (a declared deviation, not a switch)",
     "runs": None},
    {"paper": "ise", "id": "msmt_memory", "setting": "cluster_contrast.mean_update",
     "paper_says": "§4.2: the memory is updated with all batch samples on MSMT17 (our paper reading: one "
                   "momentum step with the mean of the cluster's batch samples)",
     "code_does": "a sequential sample-by-sample momentum update over the batch and its support samples "
                  "(--sample-type ori)",
     "cite": "zhangxinyu-xyz/ISE-ReID ISE_train_msmt17.sh; clustercontrast/models/cm.py (CM.backward)",
     "default": "code", "runs": ("ise_msmt", "ise_fid_memory_msmt")},
    {"paper": "ise", "id": "msmt_beta", "setting": "ise.lp_weight (ise.beta_code)",
     "paper_says": "§4.2: β = 0.1 for L_LP",
     "code_does": "β = 0.01 in the MSMT17 script",
     "cite": "zhangxinyu-xyz/ISE-ReID ISE_train_msmt17.sh",
     "default": "code", "runs": ("ise_msmt", "ise_fid_beta_msmt")},
    {"paper": "ise", "id": "all", "setting": "cluster_contrast.fidelity",
     "paper_says": "the baseline's and ISE's MSMT17 disagreements above read as the paper writes them",
     "code_does": "both as the released MSMT17 script computes them",
     "cite": "as above", "default": "code",
     "runs": [("cc_msmt", "cc_fid_paper_msmt"), ("ise_msmt", "ise_fid_paper_msmt")]},
    {"paper": "ise", "id": "sampler", "setting": "cluster_contrast.loop.cross_camera",
     "paper_says": "a random identity sampler",
     "code_does": "RandomMultipleGallerySampler: an anchor and K-1 images from other cameras (ours: the same rule, "
                  "training/data.py)",
     "cite": "zhangxinyu-xyz/ISE-ReID examples/ise_train_usl.py; alibaba/cluster-contrast-reid "
             "clustercontrast/utils/data/sampler.py",
     "default": "code (cross_camera: true)",
     "runs": [("cc_market", "cc_fid_sampler_market"), ("ise_market", "ise_fid_sampler_market")]},
    {"paper": "gcl_plus", "id": "feat_loss", "setting": "gcl_plus.feat_loss",
     "paper_says": "Eq. 2: L_feat = |f_id - E_id(x'_new)| + |f_id - E_id(x''_ori)|",
     "code_does": "the first term on the reconstruction: |f_id - E_id(x'_ori)|",
     "cite": "chenhao2345/GCL-extended gcl/trainer.py DGNet_Trainer.forward (feat_recon) and .gen_update "
             "(loss_gen_recon_f)",
     "default": "code", "runs": (GCL_CODE_RUN, "gclp_fid_feat_m")},
    {"paper": "gcl_plus", "id": "vi_positive", "setting": "gcl_plus.vi_positive",
     "paper_says": "Eq. 9: the positive of f'_new is the live feature f of the same image",
     "code_does": "the positive is the image's memory row M[i]",
     "cite": "chenhao2345/GCL-extended gcl/trainer.py DGNet_Trainer.gen_update (self.memory(f, f_nv, index)); "
             "gcl/models/memory.py",
     "default": "code", "runs": (GCL_CODE_RUN, "gclp_fid_vi_m")},
    {"paper": "gcl_plus", "id": "mix_loss", "setting": "gcl_plus.mix_loss",
     "paper_says": "Eq. 13-14: the mixed prototype λ* p_yi + (1 - λ*) p_yj against every other prototype",
     "code_does": "a cross-entropy with the soft target λ* onehot(y_i) + (1 - λ*) onehot(y_j) over all prototypes",
     "cite": "chenhao2345/GCL-extended gcl/trainer.py DGNet_Trainer.gen_update (CrossEntropyOneHot, "
             "mixed_target); gcl/loss/crossentropy.py",
     "default": "paper (the released branch cannot run: id_criterion is never defined)",
     "runs": (GCL_CODE_RUN, "gclp_fid_mix_m")},
    {"paper": "gcl_plus", "id": "angles", "setting": "gcl_plus.angles",
     "paper_says": "§3.1.1: θ drawn from {45°, 90°, ..., 315°}",
     "code_does": "np.random.randint(1, 7) * 45: 45° to 270°, never 315°",
     "cite": "chenhao2345/GCL-extended gcl/utils/data/preprocessor.py (the rotated render's angle)",
     "default": "paper (the report's per-angle FID includes 315°)", "runs": (GCL_CODE_RUN, "gclp_fid_angles_m")},
    {"paper": "gcl_plus", "id": "all", "setting": "gcl_plus.fidelity",
     "paper_says": "every GCL+ disagreement above read as the paper writes it",
     "code_does": "every GCL+ disagreement above as the official code computes it (mix_loss and angles: see "
                  "their defaults)",
     "cite": "as above", "default": "code", "runs": (GCL_CODE_RUN, "gclp_fid_paper_m")},
    {"paper": "gcl_plus", "id": "adversarial", "setting": None,
     "paper_says": "Eq. 3 and 5: the log (cross-entropy) GAN loss",
     "code_does": "LSGAN with an R1 penalty (γ 0.01) on real images, the real term and R1 recomputed per fake type",
     "cite": "chenhao2345/GCL-extended gcl/trainer.py DGNet_Trainer.dis_update / gen_update (calc_dis_loss, "
             "calc_gen_loss); gcl/models/gan.py MsImageDis",
     "default": "code (not a switch: the paper gives no weights for its form; the two switches below are the "
                "LSGAN's own disagreements)", "runs": None},
    {"paper": "gcl_plus", "id": "gen_adv", "setting": "gcl_plus.gen_adv",
     "paper_says": "Eq. 3 and 5: each adversarial term once",
     "code_does": "G's LSGAN term doubled: mean((D(x') - 1)²) × 2 per scale",
     "cite": "chenhao2345/GCL-extended gcl/models/gan.py MsImageDis.calc_gen_loss",
     "default": "code (not measured alone: the all-paper twin includes it)", "runs": None},
    {"paper": "gcl_plus", "id": "r1", "setting": "gcl_plus.r1",
     "paper_says": "no R1 (our reading: Mescheder et al.'s R1 on D as one function, the squared input gradient "
                   "of its outputs summed over the scales)",
     "code_does": "per scale, the squared input gradient of that scale's summed outputs, summed over the scales",
     "cite": "chenhao2345/GCL-extended gcl/models/gan.py MsImageDis.calc_dis_loss, compute_grad2",
     "default": "code (not measured alone: the all-paper twin includes it)", "runs": None},
    {"paper": "gcl_plus", "id": "eps", "setting": "gcl_plus.loop.eps",
     "paper_says": "§4.2: DBSCAN eps 0.5",
     "code_does": "eps 0.55, hard-coded",
     "cite": "chenhao2345/GCL-extended examples/main.py (DBSCAN)",
     "default": "paper (0.5 at both scales)", "runs": None},
    {"paper": "canu", "id": "ssg_test_feature", "setting": "ssg.test_feature",
     "paper_says": "CANU §III-B: the test feature concatenates the three L2-normalised (original + flipped) "
                   "embeddings",
     "code_does": "SSG's extract_features(for_eval=True): the flip-summed embeddings concatenated, the whole "
                  "L2-normalised (a part with a larger norm weighs more)",
     "cite": "OasisYang/SSG reid/evaluators.py (extract_features, for_eval=True); reid/models/resnet.py "
             "(ResNet.forward, for_eval)",
     "default": "paper (as issue 12 asks; the switch changes the evaluation only)",
     "runs": ("ssg_market2duke", "ssg_fid_test_market2duke")},
    {"paper": "canu", "id": "ssg_source_term", "setting": None,
     "paper_says": "§III-B: the target's three groupings (no source term is described)",
     "code_does": "the Jaccard distance plus 0.1 x each target image's distance to the source set (lambda_value)",
     "cite": "OasisYang/SSG selftraining.py (compute_dist, --lambda_value 0.1); reid/rerank.py (re_ranking); "
             "SHI-Labs/Self-Similarity-Grouping issue #17",
     "default": "ours: the target alone (lambda 0), as MMT's DBSCAN script (a declared deviation, not a switch)",
     "runs": None},
    {"paper": "canu", "id": "model_selection", "setting": None,
     "paper_says": "the final model after training",
     "code_does": "MMT keeps the best test mAP of either teacher over the epochs; SSG the best test top-1",
     "cite": "yxgeee/MMT examples/mmt_train_dbscan.py (is_best, model_best); OasisYang/SSG selftraining.py "
             "(is_best)",
     "default": "ours: the last epoch, always (paper scale also records the best test epoch, best_epoch_mAP)",
     "runs": None},
]
